// SubscriptionTree::match on trees of 10k and 100k subscriptions with a mix of filters shaped
// like an IoT fleet: exact device topics, '+' over devices or sites, '#' under a device or a
// site, and shared groups.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "broker/subscription_tree.h"

namespace starling::broker {
namespace {

constexpr int kSites = 100;

Session* fake_session(uint64_t i) {
  return reinterpret_cast<Session*>(uintptr_t{0x10} * (i + 1));
}

struct Fixture {
  SubscriptionTree tree;
  std::vector<std::string> topics;  // published topics, mostly hitting subscribed devices
  int devices_per_site = 0;
};

// 80% exact, 8% '+' over devices, 2% '+' over sites, 6% '#' per device, 2% '#' per site,
// 2% shared. Devices per site scale with n, so exact fan-out stays ~1 per topic.
std::unique_ptr<Fixture> build(int n) {
  auto f = std::make_unique<Fixture>();
  f->devices_per_site = n / kSites;
  std::mt19937_64 rng(42);
  auto site = [&] { return std::to_string(rng() % kSites); };
  auto dev = [&] { return std::to_string(rng() % f->devices_per_site); };
  SubscriptionOptions o;
  for (int i = 0; i < n; ++i) {
    const int kind = static_cast<int>(rng() % 100);
    std::string filter;
    if (kind < 80) {
      filter = "site/" + site() + "/dev/" + dev() + "/temp";
    } else if (kind < 88) {
      filter = "site/" + site() + "/dev/+/temp";
    } else if (kind < 90) {
      filter = "site/+/dev/" + dev() + "/status";
    } else if (kind < 96) {
      filter = "site/" + site() + "/dev/" + dev() + "/#";
    } else if (kind < 98) {
      filter = "site/" + site() + "/#";
    } else {
      filter = "$share/workers" + std::to_string(rng() % 8) + "/site/" + site() + "/dev/+/temp";
    }
    o.subscription_id = static_cast<uint32_t>(i);
    f->tree.subscribe(fake_session(rng() % 50000), filter, o);
  }
  for (int i = 0; i < 4096; ++i) {
    const char* leaf = rng() % 4 == 0 ? "/status" : "/temp";
    f->topics.push_back("site/" + site() + "/dev/" + dev() + leaf);
  }
  return f;
}

Fixture& fixture(int n) {
  static std::unique_ptr<Fixture> f10k;
  static std::unique_ptr<Fixture> f100k;
  auto& f = n == 10000 ? f10k : f100k;
  if (!f) f = build(n);
  return *f;
}

void BM_Match(benchmark::State& state) {
  Fixture& f = fixture(static_cast<int>(state.range(0)));
  std::vector<Subscriber> out;
  std::vector<SharedGroup*> groups;
  out.reserve(4096);
  groups.reserve(256);
  size_t i = 0;
  size_t matched = 0;
  for (auto _ : state) {
    out.clear();
    groups.clear();
    f.tree.match(f.topics[i++ & 4095], out, groups);
    matched += out.size() + groups.size();
    benchmark::DoNotOptimize(out.data());
    benchmark::DoNotOptimize(groups.data());
  }
  state.counters["subs"] = static_cast<double>(f.tree.subscription_count());
  state.counters["matches/op"] =
      benchmark::Counter(static_cast<double>(matched), benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_Match)->Arg(10000)->Arg(100000);

// A topic outside every filter's exact path: only the root-level walk.
void BM_MatchMiss(benchmark::State& state) {
  Fixture& f = fixture(static_cast<int>(state.range(0)));
  std::vector<Subscriber> out;
  std::vector<SharedGroup*> groups;
  for (auto _ : state) {
    f.tree.match("factory/line/7/press/temperature", out, groups);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_MatchMiss)->Arg(10000)->Arg(100000);

}  // namespace
}  // namespace starling::broker
