// What a file system would still hold after a power cut, under strict POSIX rules.
//
// The FUSE layer (powercut_fs.cc) passes every operation through to a backing directory, which
// is the volatile state (the page cache), and tells this model what happened. The model keeps
// the durable state beside it:
//  - a file's content becomes durable only when it is fsynced or fdatasynced (the ranges written
//    since the last sync are copied then, and its size);
//  - a directory's entries (names -> files or directories, so creations, unlinks, renames and
//    links) become durable only when that directory is fsynced.
// Everything present when the file system was mounted counts as durable. dump() writes the
// durable state as a new directory tree: what the next "boot" sees.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace powercut {

class DurableModel {
 public:
  // Scans backing_root: everything there is durable.
  explicit DurableModel(std::string backing_root);

  // A file or directory appeared (create, mknod, mkdir): new, nothing of it durable yet.
  void created(const std::string& path);
  // [offset, offset + length) of the file with inode ino changed (write, fallocate).
  void wrote(ino_t ino, off_t offset, size_t length);
  // The file with inode ino was truncated (or extended) to size: what lies past size changed.
  void truncated(ino_t ino, off_t size);
  // The file's data (and size) as they are now in the backing file fd become durable.
  void file_synced(ino_t ino, int fd);
  // The entries of the directory open as dir_fd, as they are now, become durable.
  void directory_synced(int dir_fd);
  // The path is about to stop naming its inode (unlink, rmdir, rename over it). When it was
  // the last name, the inode number may be reused for a new file, which must not inherit the
  // old file's durable content.
  void unlinking(const std::string& path);

  // Writes the durable tree into image_dir (which must not exist). Hard links stay links.
  void dump(const std::string& image_dir) const;

  struct Counts {
    uint64_t file_syncs = 0;
    uint64_t directory_syncs = 0;
    uint64_t writes = 0;
  };
  const Counts& counts() const { return counts_; }

 private:
  using NodeId = uint64_t;
  struct Node {
    bool directory = false;
    mode_t mode = 0;
    std::string data;                            // durable content (files)
    std::map<std::string, NodeId> entries;       // durable entries (directories)
    std::vector<std::pair<off_t, off_t>> dirty;  // [begin, end) written since the last sync
  };

  std::string backing(const std::string& path) const { return root_ + path; }
  // The node an inode stands for now; a new one (nothing durable) for an inode not seen yet.
  NodeId node_for(ino_t ino, bool directory, mode_t mode);
  NodeId scan(const std::string& backing_path);  // at mount: all durable
  void dump_node(NodeId id, const std::string& target,
                 std::map<NodeId, std::string>& written) const;

  std::string root_;
  NodeId root_node_ = 0;
  NodeId next_id_ = 1;
  std::unordered_map<NodeId, Node> nodes_;
  std::unordered_map<ino_t, NodeId> by_inode_;
  Counts counts_;
};

}  // namespace powercut
