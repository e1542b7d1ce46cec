// starling-powercut-fs: a FUSE file system for power-cut tests. It passes everything through to
// a backing directory and tracks what an fsync made durable (durable_model.h); when it is
// unmounted (SIGTERM or `fusermount3 -u`), it writes only the durable part as a new directory:
// what the disk would hold had the power gone at that moment.
//
//   starling-powercut-fs BACKING MOUNTPOINT IMAGE
//
// A test runs the broker's data directory on MOUNTPOINT, kills the broker (kill -9: nothing more
// gets synced), stops this process, and mounts the next instance on IMAGE (BACKING of the next
// round). Runs in the foreground, single-threaded; every write reaches it (direct_io), so none
// can hide in the kernel's cache.
//
// Why FUSE and not an LD_PRELOAD layer: RocksDB (and any library) writes through many calls
// (write, pwrite, fallocate, fdatasync, sync_file_range, rename, link...); the kernel funnels
// all of them into a few FUSE operations, so nothing can bypass the model.

#define FUSE_USE_VERSION 35
#include <fuse.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "durable_model.h"

namespace {

struct State {
  std::string root;
  bool mounted = false;  // init ran
  std::unique_ptr<powercut::DurableModel> model;
};

State& state() {
  return *static_cast<State*>(fuse_get_context()->private_data);
}
std::string backing(const char* path) {
  return state().root + path;
}

// Runs an operation: a system error becomes -errno, a model failure -EIO (and a message).
template <typename Fn>
int run(const char* what, Fn&& fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "starling-powercut-fs: %s: %s\n", what, e.what());
    return -EIO;
  }
}

int result(int rc) {
  return rc < 0 ? -errno : rc;
}

ino_t inode_of(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? st.st_ino : 0;
}

void* init(fuse_conn_info*, fuse_config* cfg) {
  cfg->use_ino = 1;
  cfg->direct_io = 1;     // every write comes here, none stays in the page cache
  cfg->hard_remove = 1;   // no .fuse_hidden files: they would show up in directory syncs
  cfg->nullpath_ok = 1;   // operations on an unlinked open file come by handle
  cfg->attr_timeout = 0;  // sizes change behind the kernel's back (our writes)
  cfg->entry_timeout = 0;
  cfg->negative_timeout = 0;
  state().mounted = true;
  return fuse_get_context()->private_data;
}

int getattr(const char* path, struct stat* st, fuse_file_info* fi) {
  if (fi) return result(::fstat(static_cast<int>(fi->fh), st));
  return result(::lstat(backing(path).c_str(), st));
}

// The whole listing in one call (offsets 0): directories here stay small.
int readdir(const char*, void* buf, fuse_fill_dir_t filler, off_t, fuse_file_info* fi,
            fuse_readdir_flags) {
  const int fd = ::dup(static_cast<int>(fi->fh));
  if (fd < 0) return -errno;
  DIR* dir = ::fdopendir(fd);
  if (!dir) {
    ::close(fd);
    return -EIO;
  }
  ::rewinddir(dir);
  while (dirent* e = ::readdir(dir)) {
    struct stat st {};
    st.st_ino = e->d_ino;
    st.st_mode = static_cast<mode_t>(DTTOIF(e->d_type));
    if (filler(buf, e->d_name, &st, 0, static_cast<fuse_fill_dir_flags>(0))) break;
  }
  ::closedir(dir);
  return 0;
}

int mkdir(const char* path, mode_t mode) {
  return run("mkdir", [&] {
    if (::mkdir(backing(path).c_str(), mode) != 0) return -errno;
    state().model->created(path);
    return 0;
  });
}

int unlink(const char* path) {
  return run("unlink", [&] {
    state().model->unlinking(path);
    return result(::unlink(backing(path).c_str()));
  });
}

int rmdir(const char* path) {
  return run("rmdir", [&] {
    state().model->unlinking(path);
    return result(::rmdir(backing(path).c_str()));
  });
}

int rename(const char* from, const char* to, unsigned int flags) {
  return run("rename", [&] {
    if (flags != 0) return -EINVAL;
    state().model->unlinking(to);
    return result(::rename(backing(from).c_str(), backing(to).c_str()));
  });
}

int link(const char* from, const char* to) {
  return result(::link(backing(from).c_str(), backing(to).c_str()));
}

int chmod(const char* path, mode_t mode, fuse_file_info* fi) {
  if (fi) return result(::fchmod(static_cast<int>(fi->fh), mode));
  return result(::chmod(backing(path).c_str(), mode));
}

int chown(const char* path, uid_t uid, gid_t gid, fuse_file_info*) {
  return result(::lchown(backing(path).c_str(), uid, gid));
}

int utimens(const char* path, const timespec tv[2], fuse_file_info* fi) {
  if (fi) return result(::futimens(static_cast<int>(fi->fh), tv));
  return result(::utimensat(AT_FDCWD, backing(path).c_str(), tv, AT_SYMLINK_NOFOLLOW));
}

int truncate(const char* path, off_t size, fuse_file_info* fi) {
  return run("truncate", [&] {
    int fd = fi ? static_cast<int>(fi->fh) : ::open(backing(path).c_str(), O_WRONLY);
    if (fd < 0) return -errno;
    int rc = result(::ftruncate(fd, size));
    if (rc == 0) state().model->truncated(inode_of(fd), size);
    if (!fi) ::close(fd);
    return rc;
  });
}

// O_APPEND is left out of the backing file: the kernel passes the offset it appends at, and
// the model records writes at the offsets they went to.
int open_flags(int flags) {
  return flags & ~O_APPEND;
}

int open(const char* path, fuse_file_info* fi) {
  return run("open", [&] {
    int fd = ::open(backing(path).c_str(), open_flags(fi->flags));
    if (fd < 0) return -errno;
    fi->fh = static_cast<uint64_t>(fd);
    if (fi->flags & O_TRUNC) state().model->truncated(inode_of(fd), 0);
    return 0;
  });
}

int create(const char* path, mode_t mode, fuse_file_info* fi) {
  return run("create", [&] {
    struct stat st {};
    const bool existed = ::lstat(backing(path).c_str(), &st) == 0;
    int fd = ::open(backing(path).c_str(), open_flags(fi->flags) | O_CREAT, mode);
    if (fd < 0) return -errno;
    fi->fh = static_cast<uint64_t>(fd);
    if (!existed) state().model->created(path);
    if (existed && (fi->flags & O_TRUNC)) state().model->truncated(inode_of(fd), 0);
    return 0;
  });
}

int read(const char*, char* buf, size_t size, off_t offset, fuse_file_info* fi) {
  ssize_t n = ::pread(static_cast<int>(fi->fh), buf, size, offset);
  return n < 0 ? -errno : static_cast<int>(n);
}

int write(const char*, const char* buf, size_t size, off_t offset, fuse_file_info* fi) {
  return run("write", [&] {
    const int fd = static_cast<int>(fi->fh);
    ssize_t n = ::pwrite(fd, buf, size, offset);
    if (n < 0) return -errno;
    state().model->wrote(inode_of(fd), offset, static_cast<size_t>(n));
    return static_cast<int>(n);
  });
}

int statfs(const char*, struct statvfs* st) {
  return result(::statvfs(state().root.c_str(), st));
}

int release(const char*, fuse_file_info* fi) {
  ::close(static_cast<int>(fi->fh));
  return 0;
}

int fsync(const char*, int, fuse_file_info* fi) {
  return run("fsync", [&] {
    const int fd = static_cast<int>(fi->fh);
    state().model->file_synced(inode_of(fd), fd);
    return 0;
  });
}

int opendir(const char* path, fuse_file_info* fi) {
  int fd = ::open(backing(path).c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return -errno;
  fi->fh = static_cast<uint64_t>(fd);
  return 0;
}

int releasedir(const char*, fuse_file_info* fi) {
  ::close(static_cast<int>(fi->fh));
  return 0;
}

int fsyncdir(const char*, int, fuse_file_info* fi) {
  return run("fsyncdir", [&] {
    state().model->directory_synced(static_cast<int>(fi->fh));
    return 0;
  });
}

int fallocate(const char*, int mode, off_t offset, off_t length, fuse_file_info* fi) {
  return run("fallocate", [&] {
    const int fd = static_cast<int>(fi->fh);
    if (::fallocate(fd, mode, offset, length) != 0) return -errno;
    state().model->wrote(inode_of(fd), offset, static_cast<size_t>(length));
    return 0;
  });
}

fuse_operations operations() {
  fuse_operations ops{};
  ops.init = init;
  ops.getattr = getattr;
  ops.readdir = readdir;
  ops.mkdir = mkdir;
  ops.unlink = unlink;
  ops.rmdir = rmdir;
  ops.rename = rename;
  ops.link = link;
  ops.chmod = chmod;
  ops.chown = chown;
  ops.utimens = utimens;
  ops.truncate = truncate;
  ops.open = open;
  ops.create = create;
  ops.read = read;
  ops.write = write;
  ops.statfs = statfs;
  ops.release = release;
  ops.fsync = fsync;
  ops.opendir = opendir;
  ops.releasedir = releasedir;
  ops.fsyncdir = fsyncdir;
  ops.fallocate = fallocate;
  return ops;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s BACKING MOUNTPOINT IMAGE\n", argv[0]);
    return 2;
  }
  State s;
  try {
    // Absolute paths: the FUSE loop may change the working directory.
    s.root = std::filesystem::absolute(argv[1]).lexically_normal().string();
    s.model = std::make_unique<powercut::DurableModel>(s.root);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "starling-powercut-fs: %s\n", e.what());
    return 1;
  }
  const std::string image = std::filesystem::absolute(argv[3]).lexically_normal().string();
  std::vector<std::string> args = {argv[0], argv[2], "-f",
                                   "-s",    "-o",    "fsname=starling-powercut,subtype=powercut"};
  std::vector<char*> fuse_argv;
  for (std::string& a : args)
    fuse_argv.push_back(a.data());
  const fuse_operations ops = operations();
  // fuse_main answers 1 also when a signal ended the loop (libfuse 3.14), which is our normal end.
  const int rc = fuse_main(static_cast<int>(fuse_argv.size()), fuse_argv.data(), &ops, &s);
  if (!s.mounted) return rc != 0 ? rc : 1;
  // Unmounted: the power is gone. What was durable is all the next boot gets.
  try {
    s.model->dump(image);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "starling-powercut-fs: writing the image: %s\n", e.what());
    return 1;
  }
  const auto& c = s.model->counts();
  std::fprintf(stderr,
               "starling-powercut-fs: image in %s (%llu writes, %llu file syncs, %llu "
               "directory syncs)\n",
               image.c_str(), static_cast<unsigned long long>(c.writes),
               static_cast<unsigned long long>(c.file_syncs),
               static_cast<unsigned long long>(c.directory_syncs));
  return 0;
}
