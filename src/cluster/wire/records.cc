#include "cluster/wire/records.h"

#include <cstring>

namespace starling::cluster {

namespace {

// One format byte per record kind: a reader skips what it does not know.
enum Format : uint8_t {
  kMessage = 0x4d,    // 'M'
  kHeartbeat = 0x48,  // 'H'
  kRoute = 0x52,      // 'R'
  kClaim = 0x43,      // 'C'
  kHandover = 0x53,   // 'S'
};

// Optional fields of a message record, one bit each.
enum MessageBits : uint8_t {
  kRetain = 1,
  kExpiry = 2,
  kFormat = 4,
  kContentType = 8,
  kResponseTopic = 16,
  kCorrelation = 32,
  kPlain = 64,
  kTargets = 128,  // the destinations of the publish and a single receiving client follow
};

class Writer {
 public:
  explicit Writer(uint8_t format) { out_.push_back(static_cast<char>(format)); }
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i)
      out_.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i)
      out_.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  }
  void str(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    out_.append(s);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  Reader(std::string_view in, uint8_t format) : in_(in) {
    ok_ = !in_.empty() && static_cast<uint8_t>(in_[0]) == format;
    pos_ = 1;
  }
  bool ok() const { return ok_; }
  bool at_end() const { return ok_ && pos_ == in_.size(); }
  uint8_t u8() {
    if (!need(1)) return 0;
    return static_cast<uint8_t>(in_[pos_++]);
  }
  uint32_t u32() {
    if (!need(4)) return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i)
      v |= static_cast<uint32_t>(static_cast<uint8_t>(in_[pos_++])) << (8 * i);
    return v;
  }
  uint64_t u64() {
    if (!need(8)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
      v |= static_cast<uint64_t>(static_cast<uint8_t>(in_[pos_++])) << (8 * i);
    return v;
  }
  std::string str() {
    const uint32_t n = u32();
    if (!need(n)) return {};
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  // A count of items, each at least min_item bytes: a corrupt count cannot make us reserve.
  uint32_t count(size_t min_item) {
    const uint32_t n = u32();
    if (ok_ && static_cast<uint64_t>(n) * min_item > in_.size() - pos_) ok_ = false;
    return ok_ ? n : 0;
  }

 private:
  bool need(size_t n) {
    if (!ok_ || in_.size() - pos_ < n) ok_ = false;
    return ok_;
  }
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = false;
};

}  // namespace

std::string encode(const MessageRecord& r) {
  Writer w(kMessage);
  uint8_t bits = 0;
  if (r.retain) bits |= kRetain;
  if (r.expiry_s) bits |= kExpiry;
  if (r.payload_format_indicator) bits |= kFormat;
  if (r.content_type) bits |= kContentType;
  if (r.response_topic) bits |= kResponseTopic;
  if (r.correlation_data) bits |= kCorrelation;
  if (r.plain) bits |= kPlain;
  const bool targets = !r.also.empty() || !r.client.empty();
  if (targets) bits |= kTargets;
  w.u8(bits);
  w.u8(r.qos);
  w.str(r.topic);
  w.str(r.payload);
  if (r.expiry_s) w.u32(*r.expiry_s);
  if (r.payload_format_indicator) w.u8(*r.payload_format_indicator);
  if (r.content_type) w.str(*r.content_type);
  if (r.response_topic) w.str(*r.response_topic);
  if (r.correlation_data) w.str(*r.correlation_data);
  w.u32(static_cast<uint32_t>(r.user_properties.size()));
  for (const auto& [name, value] : r.user_properties) {
    w.str(name);
    w.str(value);
  }
  w.str(r.origin_client_id);
  w.str(r.origin_username);
  w.str(r.origin_node);
  w.u64(r.sent_us);
  w.u32(static_cast<uint32_t>(r.groups.size()));
  for (const std::string& g : r.groups)
    w.str(g);
  if (targets) {
    w.u32(static_cast<uint32_t>(r.also.size()));
    for (const std::string& node : r.also)
      w.str(node);
    w.str(r.client);
  }
  return w.take();
}

bool decode(std::string_view bytes, MessageRecord& out) {
  Reader in(bytes, kMessage);
  MessageRecord r;
  const uint8_t bits = in.u8();
  r.qos = in.u8();
  r.retain = bits & kRetain;
  r.plain = bits & kPlain;
  r.topic = in.str();
  r.payload = in.str();
  if (bits & kExpiry) r.expiry_s = in.u32();
  if (bits & kFormat) r.payload_format_indicator = in.u8();
  if (bits & kContentType) r.content_type = in.str();
  if (bits & kResponseTopic) r.response_topic = in.str();
  if (bits & kCorrelation) r.correlation_data = in.str();
  const uint32_t properties = in.count(8);
  for (uint32_t i = 0; i < properties && in.ok(); ++i) {
    std::string name = in.str();
    std::string value = in.str();
    r.user_properties.emplace_back(std::move(name), std::move(value));
  }
  r.origin_client_id = in.str();
  r.origin_username = in.str();
  r.origin_node = in.str();
  r.sent_us = in.u64();
  const uint32_t groups = in.count(4);
  for (uint32_t i = 0; i < groups && in.ok(); ++i)
    r.groups.push_back(in.str());
  if (bits & kTargets) {
    const uint32_t also = in.count(4);
    for (uint32_t i = 0; i < also && in.ok(); ++i)
      r.also.push_back(in.str());
    r.client = in.str();
  }
  if (!in.at_end() || r.qos > 2) return false;
  out = std::move(r);
  return true;
}

InboxKind inbox_kind(std::string_view bytes) {
  if (bytes.empty()) return InboxKind::Unknown;
  switch (static_cast<uint8_t>(bytes[0])) {
    case kMessage:
      return InboxKind::Message;
    case kHandover:
      return InboxKind::Handover;
    default:
      return InboxKind::Unknown;
  }
}

std::string encode(const HandoverRecord& r) {
  Writer w(kHandover);
  w.str(r.client_id);
  w.str(r.from_node);
  w.u8(r.found ? 1 : 0);
  w.u32(r.expiry_s);
  w.u32(static_cast<uint32_t>(r.subscriptions.size()));
  for (const auto& [filter, options] : r.subscriptions) {
    w.str(filter);
    w.str(options);
  }
  w.u32(static_cast<uint32_t>(r.messages.size()));
  for (const std::string& m : r.messages)
    w.str(m);
  w.u32(static_cast<uint32_t>(r.inbound_qos2.size()));
  for (uint16_t id : r.inbound_qos2)
    w.u32(id);
  if (r.more) w.u8(1);  // absent: the last (or only) record, as before chunking
  return w.take();
}

bool decode(std::string_view bytes, HandoverRecord& out) {
  Reader in(bytes, kHandover);
  HandoverRecord r;
  r.client_id = in.str();
  r.from_node = in.str();
  const uint8_t found = in.u8();
  r.expiry_s = in.u32();
  const uint32_t subscriptions = in.count(8);
  for (uint32_t i = 0; i < subscriptions && in.ok(); ++i) {
    std::string filter = in.str();
    std::string options = in.str();
    r.subscriptions.emplace_back(std::move(filter), std::move(options));
  }
  const uint32_t messages = in.count(4);
  for (uint32_t i = 0; i < messages && in.ok(); ++i)
    r.messages.push_back(in.str());
  const uint32_t ids = in.count(4);
  for (uint32_t i = 0; i < ids && in.ok(); ++i) {
    const uint32_t id = in.u32();
    if (id == 0 || id > 0xFFFF) return false;
    r.inbound_qos2.push_back(static_cast<uint16_t>(id));
  }
  const uint8_t more = in.at_end() ? 0 : in.u8();
  if (!in.at_end() || found > 1 || more > 1 || r.client_id.empty()) return false;
  r.more = more == 1;
  r.found = found == 1;
  out = std::move(r);
  return true;
}

std::string encode(const HeartbeatRecord& r) {
  Writer w(kHeartbeat);
  w.u64(r.epoch);
  w.u64(r.sent_ms);
  w.u32(r.interval_ms);
  w.str(r.http);
  w.u8(r.leaving ? 1 : 0);
  w.u32(static_cast<uint32_t>(r.routes_read.size()));
  for (const auto& [partition, offset] : r.routes_read) {
    w.u32(static_cast<uint32_t>(partition));
    w.u64(static_cast<uint64_t>(offset));
  }
  w.u32(static_cast<uint32_t>(r.retained_read.size()));
  for (const auto& [partition, offset] : r.retained_read) {
    w.u32(static_cast<uint32_t>(partition));
    w.u64(static_cast<uint64_t>(offset));
  }
  return w.take();
}

bool decode(std::string_view bytes, HeartbeatRecord& out) {
  Reader in(bytes, kHeartbeat);
  HeartbeatRecord r;
  r.epoch = in.u64();
  r.sent_ms = in.u64();
  r.interval_ms = in.u32();
  r.http = in.str();
  const uint8_t leaving = in.u8();
  // Nodes of the build before the route barrier end here: no positions.
  const uint32_t positions = in.at_end() ? 0 : in.count(12);
  for (uint32_t i = 0; i < positions && in.ok(); ++i) {
    const auto partition = static_cast<int32_t>(in.u32());
    const auto offset = static_cast<int64_t>(in.u64());
    r.routes_read.emplace_back(partition, offset);
  }
  // Nodes of the build before the retained barrier end here.
  const uint32_t retained = in.at_end() ? 0 : in.count(12);
  for (uint32_t i = 0; i < retained && in.ok(); ++i) {
    const auto partition = static_cast<int32_t>(in.u32());
    const auto offset = static_cast<int64_t>(in.u64());
    r.retained_read.emplace_back(partition, offset);
  }
  if (!in.at_end() || leaving > 1) return false;
  r.leaving = leaving == 1;
  out = std::move(r);
  return true;
}

std::string encode(const RouteRecord& r) {
  Writer w(kRoute);
  w.u64(r.epoch);
  w.u32(r.members);
  return w.take();
}

bool decode(std::string_view bytes, RouteRecord& out) {
  Reader in(bytes, kRoute);
  RouteRecord r;
  r.epoch = in.u64();
  r.members = in.u32();
  if (!in.at_end()) return false;
  out = r;
  return true;
}

std::string encode(const ClaimRecord& r) {
  Writer w(kClaim);
  w.str(r.node);
  w.u64(r.epoch);
  w.u64(r.claimed_ms);
  w.u8(r.clean_start ? 1 : 0);
  w.u32(r.expiry_s);
  return w.take();
}

bool decode(std::string_view bytes, ClaimRecord& out) {
  Reader in(bytes, kClaim);
  ClaimRecord r;
  r.node = in.str();
  r.epoch = in.u64();
  r.claimed_ms = in.u64();
  const uint8_t clean = in.u8();
  r.expiry_s = in.u32();
  if (!in.at_end() || clean > 1 || r.node.empty()) return false;
  r.clean_start = clean == 1;
  out = std::move(r);
  return true;
}

std::string route_key(std::string_view node, std::string_view filter) {
  std::string key;
  key.reserve(node.size() + 1 + filter.size());
  key.append(node);
  key.push_back(' ');
  key.append(filter);
  return key;
}

bool parse_route_key(std::string_view key, std::string_view& node, std::string_view& filter) {
  const size_t space = key.find(' ');
  if (space == std::string_view::npos || space == 0 || space + 1 == key.size()) return false;
  node = key.substr(0, space);
  filter = key.substr(space + 1);
  return true;
}

}  // namespace starling::cluster
