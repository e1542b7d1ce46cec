#include "net/admission.h"

#include <gtest/gtest.h>

namespace starling::net {
namespace {

using Verdict = Admission::Verdict;
using namespace std::chrono_literals;

TEST(Admission, ServerAndListenerLimits) {
  Admission admission;
  Admission::ListenerCount a, b;
  config::Limits limits;
  limits.max_connections = 3;
  EXPECT_EQ(admission.admit_socket(a, 2, limits), Verdict::Admitted);
  EXPECT_EQ(admission.admit_socket(a, 2, limits), Verdict::Admitted);
  EXPECT_EQ(admission.admit_socket(a, 2, limits), Verdict::ListenerFull);
  EXPECT_EQ(admission.admit_socket(b, 0, limits), Verdict::Admitted);
  EXPECT_EQ(admission.admit_socket(b, 0, limits), Verdict::ServerFull);
  EXPECT_EQ(admission.open_sockets(), 3u);
  admission.release_socket(a);
  EXPECT_EQ(admission.admit_socket(b, 0, limits), Verdict::Admitted);
  EXPECT_EQ(a.open.load(), 1u);
  EXPECT_EQ(b.open.load(), 2u);
}

TEST(Admission, PerAddressCount) {
  Admission admission;
  config::Limits limits;
  limits.max_connections_per_address = 2;
  auto now = Admission::Clock::now();
  EXPECT_EQ(admission.admit_address("10.0.0.1", limits, now), Verdict::Admitted);
  EXPECT_EQ(admission.admit_address("10.0.0.1", limits, now), Verdict::Admitted);
  EXPECT_EQ(admission.admit_address("10.0.0.1", limits, now), Verdict::AddressFull);
  EXPECT_EQ(admission.admit_address("10.0.0.2", limits, now), Verdict::Admitted);
  admission.release_address("10.0.0.1");
  EXPECT_EQ(admission.admit_address("10.0.0.1", limits, now), Verdict::Admitted);
}

TEST(Admission, PerAddressRateRefillsOverTime) {
  Admission admission;
  config::Limits limits;
  limits.max_connection_rate_per_address = 4;
  auto now = Admission::Clock::now();
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(admission.admit_address("::1", limits, now), Verdict::Admitted) << i;
    admission.release_address("::1");
  }
  EXPECT_EQ(admission.admit_address("::1", limits, now), Verdict::AddressRate);
  // A quarter of a second gives one more at 4 per second.
  EXPECT_EQ(admission.admit_address("::1", limits, now + 260ms), Verdict::Admitted);
  EXPECT_EQ(admission.admit_address("::1", limits, now + 260ms), Verdict::AddressRate);
}

TEST(Admission, IdleAddressesAreForgotten) {
  Admission admission;
  config::Limits limits;
  limits.max_connection_rate_per_address = 1;
  auto now = Admission::Clock::now();
  for (int i = 0; i < 100; ++i) {
    std::string address = "10.1.0." + std::to_string(i);
    ASSERT_EQ(admission.admit_address(address, limits, now), Verdict::Admitted);
    admission.release_address(address);
  }
  EXPECT_EQ(admission.tracked_addresses(), 100u);
  // Much later, their buckets are full again and nothing is open: the next admit prunes them.
  EXPECT_EQ(admission.admit_address("10.2.0.1", limits, now + 60s), Verdict::Admitted);
  EXPECT_EQ(admission.tracked_addresses(), 1u);
}

TEST(Admission, NoLimitsTracksNothing) {
  Admission admission;
  config::Limits limits;
  auto now = Admission::Clock::now();
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(admission.admit_address("10.0.0.1", limits, now), Verdict::Admitted);
  EXPECT_EQ(admission.tracked_addresses(), 0u);
}

}  // namespace
}  // namespace starling::net
