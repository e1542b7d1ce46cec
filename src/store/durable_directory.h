// Directories whose existence survives a power cut.
//
// Creating a directory or a file changes its parent directory, and that change is durable only
// once the parent itself is fsynced (POSIX; ext4 and XFS can lose a fresh, unsynced entry after
// a power cut). Without it a store created at first start can vanish whole with everything it
// acknowledged. tests/integration/test_power_cut.py checks this on a file system that forgets
// whatever was not synced.
#pragma once

#include <filesystem>

namespace starling::store {

// Creates dir and its missing parents; each one created is fsynced together with its parent,
// and dir and its parent are fsynced in any case (a previous start may have crashed before).
// Throws std::system_error naming the directory.
void create_directories_durably(const std::filesystem::path& dir);

// fsync(2) of a directory: what was created, renamed or removed in it is durable afterwards.
// Throws std::system_error naming the directory.
void sync_directory(const std::filesystem::path& dir);

}  // namespace starling::store
