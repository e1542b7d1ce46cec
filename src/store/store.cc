#include "store/store.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <system_error>

#include "metrics/histogram.h"
#include "store/durable_directory.h"

namespace starling::store {

Durability parse_durability(const std::string& text) {
  if (text == "none") return Durability::None;
  if (text == "batch") return Durability::Batch;
  if (text == "always") return Durability::Always;
  throw std::invalid_argument("durability must be none, batch or always");
}

const char* to_string(Durability d) {
  switch (d) {
    case Durability::None:
      return "none";
    case Durability::Batch:
      return "batch";
    case Durability::Always:
      return "always";
  }
  return "?";
}

// --- Batch --------------------------------------------------------------------------------

Batch::Batch() : batch_(std::make_unique<rocksdb::WriteBatch>()) {}
Batch::~Batch() = default;
Batch::Batch(Batch&&) noexcept = default;
Batch& Batch::operator=(Batch&&) noexcept = default;

void Batch::put(std::string_view key, std::string_view value) {
  batch_->Put(rocksdb::Slice(key.data(), key.size()), rocksdb::Slice(value.data(), value.size()));
  ++ops_;
}

void Batch::del(std::string_view key) {
  batch_->Delete(rocksdb::Slice(key.data(), key.size()));
  ++ops_;
}

void Batch::del_prefix(std::string_view prefix) {
  // [prefix, prefix with its last byte incremented): client prefixes end in \0, so the
  // increment never overflows.
  std::string end(prefix);
  end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  batch_->DeleteRange(rocksdb::Slice(prefix.data(), prefix.size()), rocksdb::Slice(end));
  ++ops_;
}

// --- Store --------------------------------------------------------------------------------

Store::Store(const std::string& dir, Durability durability) : dir_(dir), durability_(durability) {
  try {
    create_directories_durably(dir);
  } catch (const std::system_error& e) {
    throw StoreError(std::string("cannot create the data directory: ") + e.what());
  }
#ifdef STARLING_TEST_HOOKS
  // Test builds only (never Release): lets tests/integration/test_power_cut.py prove that it
  // catches a store that does not sync.
  if (std::getenv("STARLING_TEST_UNSAFE_NO_SYNC")) {
    sync_ = false;
    spdlog::warn("STARLING_TEST_UNSAFE_NO_SYNC: the store does not sync; a power cut loses data");
  }
#endif

  rocksdb::Options options;
  options.create_if_missing = true;
  options.paranoid_checks = true;
  // The WAL is the durability point; memtables flush in the background.
  options.IncreaseParallelism(2);
  options.max_background_jobs = 2;
  options.write_buffer_size = 32 << 20;
  options.keep_log_file_num = 3;
  options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status st = rocksdb::DB::Open(options, dir, &raw);
  if (!st.ok()) {
    std::string how;
    if (st.IsCorruption()) {
      how =
          " The store is corrupt. To try a repair, stop Starling and run "
          "`starling repair-store --data <dir>`; to start empty instead, move the directory "
          "away (what it held is then lost).";
    } else if (st.IsIOError()) {
      how =
          " Check that the directory is readable and writable and that no other Starling "
          "uses it (RocksDB holds a lock file).";
    }
    throw StoreError("cannot open the store in " + dir + ": " + st.ToString() + "." + how);
  }
  db_.reset(raw);
  writer_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "starling-store");
    writer_loop();
  });
}

Store::~Store() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_.notify_all();
  if (writer_.joinable()) writer_.join();
  db_.reset();
}

uint64_t Store::reserve() {
  std::lock_guard lock(mutex_);
  return next_ticket_++;
}

void Store::commit(uint64_t ticket, Batch&& batch) {
  batch.committed_at_ = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mutex_);
    committed_.emplace(ticket, std::move(batch));
  }
  work_.notify_one();
}

uint64_t Store::write(Batch&& batch) {
  uint64_t ticket = reserve();
  commit(ticket, std::move(batch));
  return ticket;
}

void Store::write_background(Batch&& batch) {
  batch.background_ = true;
  write(std::move(batch));
}

void Store::when_durable(uint64_t ticket, std::function<void()> fn) {
  {
    std::lock_guard lock(mutex_);
    if (ticket > durable_.load(std::memory_order_acquire)) {
      waiters_.emplace(ticket, std::move(fn));
      return;
    }
  }
  fn();
}

void Store::flush() {
  uint64_t target;
  {
    std::lock_guard lock(mutex_);
    target = next_ticket_ - 1;
  }
  std::unique_lock lock(mutex_);
  done_.wait(lock, [&] { return settled_ >= target || stopping_; });
}

void Store::writer_loop() {
  std::vector<Batch> group;
  std::vector<std::function<void()>> ready;
  for (;;) {
    uint64_t last = 0;
    {
      std::unique_lock lock(mutex_);
      work_.wait(lock, [&] {
        return stopping_ ||
               (!committed_.empty() && committed_.begin()->first == durable_.load() + 1);
      });
      if (committed_.empty() || committed_.begin()->first != durable_.load() + 1) {
        if (stopping_) break;
        continue;
      }
      // Take the contiguous run of committed tickets: they are written as one group.
      uint64_t expect = durable_.load() + 1;
      while (!committed_.empty() && committed_.begin()->first == expect) {
        const bool waited_for = !committed_.begin()->second.background_;
        group.push_back(std::move(committed_.begin()->second));
        committed_.erase(committed_.begin());
        last = expect++;
        // One sync per write somebody waits for; background writes ride along.
        if (durability_ == Durability::Always && waited_for) break;
      }
    }

    // The WAL is sequential: syncing with the last write makes every write of the group
    // durable, so only the last non-empty one waits for the disk.
    size_t last_write = group.size();
    for (size_t i = 0; i < group.size(); ++i) {
      if (!group[i].empty()) last_write = i;
    }
    for (size_t i = 0; i < group.size() && last_write != group.size(); ++i) {
      if (group[i].empty()) continue;
      rocksdb::WriteOptions options;
      options.sync = sync_ && i == last_write;
      rocksdb::Status st = db_->Write(options, group[i].batch_.get());
      if (!st.ok()) {
        // Nothing can be acknowledged any more: stop loudly rather than lie to clients.
        spdlog::critical("store write failed in {}: {}; stopping", dir_, st.ToString());
        std::abort();
      }
    }
    const auto written = std::chrono::steady_clock::now();
    for (const Batch& b : group) {
      metrics::observe(metrics::Histogram::StoreCommit, written - b.committed_at_);
    }
    commits_.fetch_add(group.size(), std::memory_order_relaxed);
    if (last_write != group.size()) syncs_.fetch_add(1, std::memory_order_relaxed);
    group.clear();

    {
      std::lock_guard lock(mutex_);
      durable_.store(last, std::memory_order_release);
      while (!waiters_.empty() && waiters_.begin()->first <= last) {
        ready.push_back(std::move(waiters_.begin()->second));
        waiters_.erase(waiters_.begin());
      }
    }
    for (auto& fn : ready)
      fn();
    ready.clear();
    {
      // flush() returns only after the wake-ups of what it waited for have run.
      std::lock_guard lock(mutex_);
      settled_ = last;
    }
    done_.notify_all();
  }
  done_.notify_all();
}

void Store::scan(std::string_view prefix,
                 const std::function<bool(std::string_view, std::string_view)>& visit,
                 std::string_view start_key) const {
  rocksdb::ReadOptions options;
  options.verify_checksums = true;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options));
  rocksdb::Slice start(prefix.data(), prefix.size());
  it->Seek(start_key.size() > prefix.size() ? rocksdb::Slice(start_key.data(), start_key.size())
                                            : start);
  for (; it->Valid() && it->key().starts_with(start); it->Next()) {
    if (!visit(std::string_view(it->key().data(), it->key().size()),
               std::string_view(it->value().data(), it->value().size()))) {
      break;
    }
  }
  if (!it->status().ok()) {
    throw StoreError("cannot read the store in " + dir_ + ": " + it->status().ToString());
  }
}

void Store::repair(const std::string& dir) {
  rocksdb::Options options;
  rocksdb::Status st = rocksdb::RepairDB(dir, options);
  if (!st.ok()) throw StoreError("repair of " + dir + " failed: " + st.ToString());
}

void Store::checkpoint(const std::string& target) {
  rocksdb::Checkpoint* raw = nullptr;
  rocksdb::Status st = rocksdb::Checkpoint::Create(db_.get(), &raw);
  std::unique_ptr<rocksdb::Checkpoint> cp(raw);
  if (st.ok()) st = cp->CreateCheckpoint(target);
  if (!st.ok()) throw StoreError("checkpoint to " + target + " failed: " + st.ToString());
}

}  // namespace starling::store
