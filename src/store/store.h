// Durable state on RocksDB, with group commit.
//
// Writers reserve a ticket, build a Batch, and commit it; one writer thread writes committed
// batches in ticket order and advances durable(): every ticket at or below it is on disk.
// Acknowledgements wait for their ticket (see Session's output fence), so nothing is
// acknowledged before what it changed is durable. Under "batch" the writer syncs the WAL once
// for every group of batches that are waiting together; under "always" once per batch.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace rocksdb {
class DB;
class WriteBatch;
}  // namespace rocksdb

namespace starling::store {

enum class Durability { None, Batch, Always };
Durability parse_durability(const std::string& text);  // throws std::invalid_argument
const char* to_string(Durability d);

class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Batch {
 public:
  Batch();
  ~Batch();
  Batch(Batch&&) noexcept;
  Batch& operator=(Batch&&) noexcept;

  void put(std::string_view key, std::string_view value);
  void del(std::string_view key);
  // Every key starting with prefix.
  void del_prefix(std::string_view prefix);
  bool empty() const { return ops_ == 0; }

 private:
  friend class Store;
  std::unique_ptr<rocksdb::WriteBatch> batch_;
  size_t ops_ = 0;
  bool background_ = false;
  std::chrono::steady_clock::time_point committed_at_{};  // for the commit latency histogram
};

class Store {
 public:
  // Opens (creating if missing) the database in dir. A corrupt or unreadable store throws
  // StoreError saying what is wrong and how to repair or reset it; it never starts empty.
  Store(const std::string& dir, Durability durability);
  ~Store();  // writes what was committed, then stops
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  Durability durability() const { return durability_; }
  const std::string& dir() const { return dir_; }

  // Any thread. Every reserved ticket must be committed (an empty batch is fine), in any
  // order; the writer waits for the lowest.
  uint64_t reserve();
  void commit(uint64_t ticket, Batch&& batch);
  uint64_t write(Batch&& batch);  // reserve + commit; returns the ticket
  // A write nobody waits for (deleting a delivered message, noting a disconnect): under
  // "always" it rides along with the next synced write instead of paying its own sync.
  void write_background(Batch&& batch);

  uint64_t durable() const { return durable_.load(std::memory_order_acquire); }
  // Runs fn once ticket is durable: at once (on this thread) if it is, else on the writer.
  void when_durable(uint64_t ticket, std::function<void()> fn);
  // Blocks until everything committed so far is durable and the when_durable callbacks of
  // those tickets have run (tests, shutdown).
  void flush();

  // Reads the keys with prefix, in key order, from start (if given and past prefix); visit
  // returns false to stop.
  void scan(std::string_view prefix,
            const std::function<bool(std::string_view key, std::string_view value)>& visit,
            std::string_view start = {}) const;

  // A consistent copy of the database, made while running (RocksDB checkpoint). target must
  // not exist. Throws StoreError.
  void checkpoint(const std::string& target);

  // RocksDB's repair of a corrupt store (the broker must not be running). Throws StoreError.
  static void repair(const std::string& dir);

  // Figures for $SYS and metrics.
  uint64_t commits() const { return commits_.load(std::memory_order_relaxed); }
  uint64_t syncs() const { return syncs_.load(std::memory_order_relaxed); }

 private:
  void writer_loop();

  const std::string dir_;
  const Durability durability_;
  bool sync_ = true;  // false only in test builds, by STARLING_TEST_UNSAFE_NO_SYNC
  std::unique_ptr<rocksdb::DB> db_;

  std::mutex mutex_;
  std::condition_variable work_;
  std::condition_variable done_;
  uint64_t next_ticket_ = 1;                                // by mutex_
  std::map<uint64_t, Batch> committed_;                     // by mutex_: waiting for the writer
  std::multimap<uint64_t, std::function<void()>> waiters_;  // by mutex_
  bool stopping_ = false;                                   // by mutex_
  uint64_t settled_ = 0;  // by mutex_: durable and its wake-ups run
  std::atomic<uint64_t> durable_{0};
  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> syncs_{0};
  std::thread writer_;
};

}  // namespace starling::store
