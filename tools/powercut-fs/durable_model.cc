#include "durable_model.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace powercut {
namespace {

std::runtime_error system_error(const std::string& what) {
  return std::runtime_error(what + ": " + std::strerror(errno));
}

struct stat lstat_or_throw(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) throw system_error(path);
  return st;
}

std::vector<std::string> list_directory(const std::string& path) {
  DIR* dir = ::opendir(path.c_str());
  if (!dir) throw system_error(path);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  ::closedir(dir);
  return names;
}

std::string read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw system_error(path);
  std::string data;
  char buffer[65536];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      throw system_error(path);
    }
    if (n == 0) break;
    data.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return data;
}

void write_file(const std::string& path, const std::string& data, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, mode & 07777);
  if (fd < 0) throw system_error(path);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      throw system_error(path);
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
}

}  // namespace

DurableModel::DurableModel(std::string backing_root) : root_(std::move(backing_root)) {
  while (root_.size() > 1 && root_.back() == '/')
    root_.pop_back();
  root_node_ = scan(root_);
}

DurableModel::NodeId DurableModel::scan(const std::string& backing_path) {
  const struct stat st = lstat_or_throw(backing_path);
  const bool directory = S_ISDIR(st.st_mode);
  if (!directory && !S_ISREG(st.st_mode)) {
    throw std::runtime_error(backing_path + ": only files and directories are supported");
  }
  // A hard link seen before is the same node.
  if (auto it = by_inode_.find(st.st_ino); it != by_inode_.end()) return it->second;
  const NodeId id = node_for(st.st_ino, directory, st.st_mode);
  if (directory) {
    for (const std::string& name : list_directory(backing_path)) {
      const NodeId child = scan(backing_path + "/" + name);
      nodes_[id].entries[name] = child;
    }
  } else {
    nodes_[id].data = read_file(backing_path);
  }
  return id;
}

DurableModel::NodeId DurableModel::node_for(ino_t ino, bool directory, mode_t mode) {
  auto [it, added] = by_inode_.try_emplace(ino, 0);
  if (added) {
    it->second = next_id_++;
    Node& node = nodes_[it->second];
    node.directory = directory;
    node.mode = mode;
  }
  return it->second;
}

void DurableModel::created(const std::string& path) {
  const struct stat st = lstat_or_throw(backing(path));
  // A stale mapping (inode reused behind our back) must not lend the new file old content.
  by_inode_.erase(st.st_ino);
  node_for(st.st_ino, S_ISDIR(st.st_mode), st.st_mode);
}

void DurableModel::wrote(ino_t ino, off_t offset, size_t length) {
  ++counts_.writes;
  auto it = by_inode_.find(ino);
  if (it == by_inode_.end() || length == 0) return;
  auto& dirty = nodes_[it->second].dirty;
  const off_t end = offset + static_cast<off_t>(length);
  // Appends (the common case: logs) extend the last range instead of adding one.
  if (!dirty.empty() && dirty.back().second == offset) {
    dirty.back().second = end;
  } else {
    dirty.emplace_back(offset, end);
  }
}

void DurableModel::truncated(ino_t ino, off_t size) {
  auto it = by_inode_.find(ino);
  if (it == by_inode_.end()) return;
  nodes_[it->second].dirty.emplace_back(size, std::numeric_limits<off_t>::max());
}

void DurableModel::file_synced(ino_t ino, int fd) {
  ++counts_.file_syncs;
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw system_error("fstat");
  // The caller's descriptor may be write-only; the same file (even unlinked) read-only:
  const std::string self = "/proc/self/fd/" + std::to_string(fd);
  fd = ::open(self.c_str(), O_RDONLY);
  if (fd < 0) throw system_error(self);
  Node& node = nodes_[node_for(ino, false, st.st_mode)];
  const auto size = static_cast<size_t>(st.st_size);
  node.data.resize(size, '\0');
  for (auto [begin, end] : node.dirty) {
    const auto from = static_cast<size_t>(begin);
    const size_t to = std::min(static_cast<size_t>(end), size);
    if (from >= to) continue;
    size_t done = 0;
    while (from + done < to) {
      ssize_t n = ::pread(fd, node.data.data() + from + done, to - from - done,
                          static_cast<off_t>(from + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        ::close(fd);
        throw system_error("pread");
      }
      if (n == 0) break;
      done += static_cast<size_t>(n);
    }
  }
  ::close(fd);
  node.dirty.clear();
}

void DurableModel::directory_synced(int dir_fd) {
  ++counts_.directory_syncs;
  struct stat st {};
  if (::fstat(dir_fd, &st) != 0) throw system_error("fstat");
  const NodeId id = node_for(st.st_ino, true, st.st_mode);
  std::map<std::string, NodeId> entries;
  for (const std::string& name : list_directory("/proc/self/fd/" + std::to_string(dir_fd))) {
    struct stat child {};
    if (::fstatat(dir_fd, name.c_str(), &child, AT_SYMLINK_NOFOLLOW) != 0) {
      throw system_error(name);
    }
    entries[name] = node_for(child.st_ino, S_ISDIR(child.st_mode), child.st_mode);
  }
  nodes_[id].entries = std::move(entries);
}

void DurableModel::unlinking(const std::string& path) {
  struct stat st {};
  if (::lstat(backing(path).c_str(), &st) != 0) return;  // the operation itself will fail
  const nlink_t last = S_ISDIR(st.st_mode) ? 2 : 1;
  if (st.st_nlink <= last) by_inode_.erase(st.st_ino);  // the node stays for durable entries
}

void DurableModel::dump(const std::string& image_dir) const {
  std::map<NodeId, std::string> written;
  dump_node(root_node_, image_dir, written);
}

void DurableModel::dump_node(NodeId id, const std::string& target,
                             std::map<NodeId, std::string>& written) const {
  const Node& node = nodes_.at(id);
  if (!node.directory) {
    if (auto it = written.find(id); it != written.end()) {
      if (::link(it->second.c_str(), target.c_str()) != 0) throw system_error(target);
      return;
    }
    write_file(target, node.data, node.mode);
    written.emplace(id, target);
    return;
  }
  if (::mkdir(target.c_str(), node.mode & 07777) != 0) throw system_error(target);
  for (const auto& [name, child] : node.entries) {
    dump_node(child, target + "/" + name, written);
  }
}

}  // namespace powercut
