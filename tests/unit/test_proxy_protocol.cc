// The PROXY protocol layer (HAProxy's spec, versions 1 and 2): headers whole and in pieces,
// the source address it reports, and what it refuses.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "net/layers/proxy_protocol.h"

namespace starling::net {
namespace {

const std::string kV2Signature("\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A", 12);
const std::string kMqttConnect("\x10\x0c\x00\x04MQTT\x05\x02\x00\x3c\x00\x00", 14);

struct Fed {
  bool ok = true;
  std::string up;
  std::string down;
};

// Feeds data to the layer `step` bytes at a time (stops at a failure).
Fed feed(ProxyLayer& layer, const std::string& data, size_t step) {
  Fed fed;
  for (size_t i = 0; i < data.size() && fed.ok; i += step) {
    fed.ok = layer.on_input(std::string_view(data).substr(i, step), fed.up, fed.down);
  }
  return fed;
}

// A v2 header: command (0 LOCAL, 1 PROXY), family byte, address block and TLVs.
std::string v2(uint8_t command, uint8_t family, const std::string& block) {
  std::string h = kV2Signature;
  h += static_cast<char>(0x20 | command);
  h += static_cast<char>(family);
  h += static_cast<char>(block.size() >> 8);
  h += static_cast<char>(block.size() & 0xFF);
  return h + block;
}

std::string bytes(std::initializer_list<int> values) {
  std::string s;
  for (int v : values)
    s += static_cast<char>(v);
  return s;
}

TEST(ProxyProtocol, V1Tcp4) {
  ProxyLayer layer;
  const std::string header = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 1883\r\n";
  Fed fed = feed(layer, header + kMqttConnect, 4096);
  ASSERT_TRUE(fed.ok) << layer.error();
  EXPECT_TRUE(layer.established());
  EXPECT_EQ(layer.source(), "192.168.0.1:56324");
  EXPECT_EQ(fed.up, kMqttConnect);
  EXPECT_TRUE(fed.down.empty());
}

TEST(ProxyProtocol, V1Tcp6) {
  ProxyLayer layer;
  Fed fed = feed(layer, "PROXY TCP6 2001:db8::1 ::1 5678 1883\r\n", 4096);
  ASSERT_TRUE(fed.ok) << layer.error();
  EXPECT_EQ(layer.source(), "[2001:db8::1]:5678");
  EXPECT_TRUE(fed.up.empty());
}

TEST(ProxyProtocol, V1Unknown) {
  for (const std::string header :
       {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ffff::2 65535 65535\r\n"}) {
    ProxyLayer layer;
    Fed fed = feed(layer, header + "x", 4096);
    ASSERT_TRUE(fed.ok) << header << ": " << layer.error();
    EXPECT_TRUE(layer.established());
    EXPECT_FALSE(layer.source().has_value());
    EXPECT_EQ(fed.up, "x");
  }
}

TEST(ProxyProtocol, V1ByteByByte) {
  ProxyLayer layer;
  const std::string header = "PROXY TCP4 10.0.0.1 10.0.0.2 1 65535\r\n";
  std::string up, down;
  for (size_t i = 0; i + 1 < header.size(); ++i) {
    ASSERT_TRUE(layer.on_input(header.substr(i, 1), up, down)) << i << ": " << layer.error();
    EXPECT_FALSE(layer.established());
  }
  ASSERT_TRUE(layer.on_input(header.substr(header.size() - 1) + "abc", up, down));
  EXPECT_TRUE(layer.established());
  EXPECT_EQ(layer.source(), "10.0.0.1:1");
  EXPECT_EQ(up, "abc");
  ASSERT_TRUE(layer.on_input("def", up, down));
  EXPECT_EQ(up, "abcdef");
}

TEST(ProxyProtocol, V1Malformed) {
  for (const std::string header : {
           "PROXY TCP4 192.168.0.1 192.168.0.11 56324\r\n",         // a field missing
           "PROXY TCP4 192.168.0.1 192.168.0.11 56324 1883 x\r\n",  // one too many
           "PROXY TCP4 ::1 ::1 56324 1883\r\n",                     // not IPv4
           "PROXY TCP6 1.2.3.4 1.2.3.4 56324 1883\r\n",             // not IPv6
           "PROXY TCP4 1.2.3.4 1.2.3.4 65536 1883\r\n",             // port out of range
           "PROXY TCP4 1.2.3.4 1.2.3.4 0123 1883\r\n",              // leading zero
           "PROXY TCP4 1.2.3.4 1.2.3.4 -1 1883\r\n",                // not a number
           "PROXY TCP4  1.2.3.4 1.2.3.4 1 1883\r\n",                // two spaces
           "PROXY UDP4 1.2.3.4 1.2.3.4 1 1883\r\n",                 // not TCP
           "PROXY \r\n",                                            // nothing
           "PROXY TCP4 1.2.3.4 1.2.3.4 1 1883\n",                   // LF alone
           "PROXY TCP4 1.2.3.4 1.2.3.4 1 1883\rx",                  // CR alone
       }) {
    for (size_t step : {size_t{1}, size_t{4096}}) {
      ProxyLayer layer;
      Fed fed = feed(layer, header, step);
      EXPECT_FALSE(fed.ok) << header;
      EXPECT_FALSE(layer.error().empty());
      EXPECT_FALSE(layer.established());
    }
  }
}

TEST(ProxyProtocol, V1TooLong) {
  // 107 bytes is the spec's maximum, CRLF included.
  const std::string prefix = "PROXY UNKNOWN ";
  const std::string longest = prefix + std::string(107 - prefix.size() - 2, 'x') + "\r\n";
  ASSERT_EQ(longest.size(), 107u);
  ProxyLayer ok;
  EXPECT_TRUE(feed(ok, longest, 4096).ok) << ok.error();
  EXPECT_TRUE(ok.established());

  const std::string too_long = prefix + std::string(107 - prefix.size() - 1, 'x') + "\r\n";
  for (size_t step : {size_t{1}, size_t{4096}}) {
    ProxyLayer layer;
    EXPECT_FALSE(feed(layer, too_long, step).ok);
    EXPECT_NE(layer.error().find("107"), std::string::npos) << layer.error();
  }
  // No CRLF at all: refused once 107 bytes are in, not buffered forever.
  ProxyLayer endless;
  EXPECT_FALSE(feed(endless, prefix + std::string(200, 'x'), 1).ok);
}

TEST(ProxyProtocol, V2Ipv4WithTlvs) {
  // 10.1.2.3:4660 -> 10.0.0.1:1883, then two TLVs (ALPN "mqtt", an authority) to skip.
  const std::string block = bytes({10, 1, 2, 3, 10, 0, 0, 1, 0x12, 0x34, 0x07, 0x5b}) +
                            bytes({0x01, 0, 4}) + "mqtt" + bytes({0x02, 0, 3}) + "a.b";
  const std::string header = v2(1, 0x11, block);
  for (size_t step : {size_t{1}, size_t{7}, size_t{4096}}) {
    ProxyLayer layer;
    Fed fed = feed(layer, header + kMqttConnect, step);
    ASSERT_TRUE(fed.ok) << layer.error();
    EXPECT_TRUE(layer.established());
    EXPECT_EQ(layer.source(), "10.1.2.3:4660");
    EXPECT_EQ(fed.up, kMqttConnect);
  }
}

TEST(ProxyProtocol, V2Ipv6) {
  std::string block(16, '\0');
  block[0] = 0x20;
  block[1] = 0x01;
  block[2] = 0x0d;
  block[3] = static_cast<char>(0xb8);
  block[15] = 0x07;
  block += std::string(15, '\0') + "\x01";   // destination ::1
  block += bytes({0xC3, 0x50, 0x07, 0x5b});  // 50000 -> 1883
  ProxyLayer layer;
  Fed fed = feed(layer, v2(1, 0x21, block), 4096);
  ASSERT_TRUE(fed.ok) << layer.error();
  EXPECT_EQ(layer.source(), "[2001:db8::7]:50000");
}

TEST(ProxyProtocol, V2LocalAndUnspec) {
  // LOCAL (a health check from the balancer itself): the address block means nothing.
  ProxyLayer local;
  Fed fed = feed(local, v2(0, 0x11, bytes({1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2})) + "x", 4096);
  ASSERT_TRUE(fed.ok) << local.error();
  EXPECT_TRUE(local.established());
  EXPECT_FALSE(local.source().has_value());
  EXPECT_EQ(fed.up, "x");

  ProxyLayer empty_local;
  ASSERT_TRUE(feed(empty_local, v2(0, 0x00, ""), 4096).ok);
  EXPECT_TRUE(empty_local.established());

  ProxyLayer unspec;
  ASSERT_TRUE(feed(unspec, v2(1, 0x00, "tlvs"), 4096).ok) << unspec.error();
  EXPECT_TRUE(unspec.established());
  EXPECT_FALSE(unspec.source().has_value());
}

TEST(ProxyProtocol, V2Refused) {
  const std::string ipv4 = bytes({1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2});
  std::string bad_version = v2(1, 0x11, ipv4);
  bad_version[12] = 0x11;
  const std::vector<std::string> headers = {
      bad_version,
      v2(2, 0x11, ipv4),                  // unknown command
      v2(1, 0x12, ipv4),                  // UDP
      v2(1, 0x22, std::string(36, 'a')),  // UDP over IPv6
      v2(1, 0x41, ipv4),                  // unknown family
      v2(1, 0x13, ipv4),                  // unknown transport
      v2(1, 0x11, ipv4.substr(0, 11)),    // address block too short
      v2(1, 0x21, std::string(35, 'a')),
  };
  for (const std::string& header : headers) {
    for (size_t step : {size_t{1}, size_t{4096}}) {
      ProxyLayer layer;
      EXPECT_FALSE(feed(layer, header, step).ok);
      EXPECT_FALSE(layer.error().empty());
    }
  }
}

TEST(ProxyProtocol, V2Oversize) {
  // The declared length alone refuses it: nothing past 16 bytes is waited for.
  std::string header = kV2Signature + bytes({0x21, 0x11, 0x10, 0x01});  // 4097 bytes follow
  ProxyLayer layer;
  std::string up, down;
  EXPECT_FALSE(layer.on_input(header, up, down));
  EXPECT_NE(layer.error().find("longer"), std::string::npos) << layer.error();

  ProxyLayer largest;
  EXPECT_TRUE(feed(largest, v2(1, 0x00, std::string(4096, 't')), 4096).ok) << largest.error();
  EXPECT_TRUE(largest.established());
}

TEST(ProxyProtocol, Garbage) {
  for (const std::string& input :
       {kMqttConnect, std::string("GET / HTTP/1.1\r\n\r\n"), std::string("PROXZ TCP4"),
        std::string("\r\n\r\n\r\n"), kV2Signature.substr(0, 5) + "x", std::string("proxy ")}) {
    ProxyLayer layer;
    std::string up, down;
    EXPECT_FALSE(layer.on_input(input, up, down)) << input;
    EXPECT_EQ(layer.error(), "PROXY protocol header expected") << input;
    EXPECT_TRUE(up.empty());
    // Stays failed.
    EXPECT_FALSE(layer.on_input("PROXY UNKNOWN\r\n", up, down));
    EXPECT_FALSE(layer.on_output("x", down));
  }
}

TEST(ProxyProtocol, PrefixesWait) {
  for (const std::string& input :
       {std::string("P"), std::string("PROXY"), std::string("PROXY TCP4"),
        kV2Signature.substr(0, 1), kV2Signature, kV2Signature + bytes({0x21, 0x11, 0x00})}) {
    ProxyLayer layer;
    std::string up, down;
    EXPECT_TRUE(layer.on_input(input, up, down)) << layer.error();
    EXPECT_FALSE(layer.established());
    EXPECT_TRUE(up.empty());
  }
}

TEST(ProxyProtocol, OutputPassesThrough) {
  ProxyLayer layer;
  std::string down;
  EXPECT_TRUE(layer.on_output("early", down));  // the balancer forwards it
  std::string up;
  ASSERT_TRUE(layer.on_input("PROXY UNKNOWN\r\n", up, down));
  EXPECT_TRUE(layer.on_output("late", down));
  EXPECT_EQ(down, "earlylate");
}

TEST(ProxyProtocol, ParseFunction) {
  auto h = parse_proxy_header("PROXY TCP4 1.2.3.4 5.6.7.8 9 10\r\nrest");
  EXPECT_EQ(h.status, ProxyHeader::Status::Done);
  EXPECT_EQ(h.size, 33u);
  EXPECT_EQ(h.source, "1.2.3.4:9");
  EXPECT_EQ(parse_proxy_header("PROXY TCP4 1.2.3.4").status, ProxyHeader::Status::NeedMore);
  EXPECT_EQ(parse_proxy_header("").status, ProxyHeader::Status::NeedMore);
  EXPECT_EQ(parse_proxy_header("x").status, ProxyHeader::Status::Error);
}

}  // namespace
}  // namespace starling::net
