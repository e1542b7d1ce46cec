#include "store/records.h"

#include <cstring>

namespace starling::store {

namespace {

constexpr uint8_t kVersion = 1;

// --- Writing ------------------------------------------------------------------------------

void put_u8(std::string& out, uint8_t v) {
  out.push_back(static_cast<char>(v));
}
void put_u16(std::string& out, uint16_t v) {
  put_u8(out, static_cast<uint8_t>(v >> 8));
  put_u8(out, static_cast<uint8_t>(v));
}
void put_u32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    put_u8(out, static_cast<uint8_t>(v >> shift));
}
void put_u64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8)
    put_u8(out, static_cast<uint8_t>(v >> shift));
}
void put_bytes(std::string& out, std::string_view s) {
  put_u32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}
void put_optional(std::string& out, const std::optional<std::string>& s) {
  put_u8(out, s ? 1 : 0);
  if (s) put_bytes(out, *s);
}

// --- Reading ------------------------------------------------------------------------------

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return ok_ && in_.empty(); }

  uint8_t u8() {
    if (!need(1)) return 0;
    uint8_t v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return v;
  }
  uint16_t u16() {
    uint16_t hi = u8();
    return static_cast<uint16_t>((hi << 8) | u8());
  }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i)
      v = (v << 8) | u8();
    return v;
  }
  uint64_t u64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
      v = (v << 8) | u8();
    return v;
  }
  std::string bytes() {
    uint32_t n = u32();
    if (!need(n)) return {};
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }
  std::optional<std::string> optional_bytes() {
    if (u8() == 0) return std::nullopt;
    return bytes();
  }

 private:
  bool need(size_t n) {
    if (!ok_ || in_.size() < n) {
      ok_ = false;
      return false;
    }
    return true;
  }
  std::string_view in_;
  bool ok_ = true;
};

void write_message(std::string& out, const MessageRecord& m) {
  put_bytes(out, m.topic);
  put_bytes(out, m.payload);
  put_u8(out, m.qos);
  put_u8(out, m.retain ? 1 : 0);
  put_u64(out, m.expires_at_ms);
  put_u8(out, m.payload_format_indicator ? 1 : 0);
  if (m.payload_format_indicator) put_u8(out, *m.payload_format_indicator);
  put_optional(out, m.content_type);
  put_optional(out, m.response_topic);
  put_optional(out, m.correlation_data);
  put_u32(out, static_cast<uint32_t>(m.user_properties.size()));
  for (const auto& [k, v] : m.user_properties) {
    put_bytes(out, k);
    put_bytes(out, v);
  }
}

void read_message(Reader& r, MessageRecord& m) {
  m.topic = r.bytes();
  m.payload = r.bytes();
  m.qos = r.u8();
  m.retain = r.u8() != 0;
  m.expires_at_ms = r.u64();
  m.payload_format_indicator.reset();
  if (r.u8()) m.payload_format_indicator = r.u8();
  m.content_type = r.optional_bytes();
  m.response_topic = r.optional_bytes();
  m.correlation_data = r.optional_bytes();
  uint32_t n = r.u32();
  m.user_properties.clear();
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    std::string k = r.bytes();
    std::string v = r.bytes();
    m.user_properties.emplace_back(std::move(k), std::move(v));
  }
}

std::string keyed(Kind kind, std::string_view a) {
  std::string k;
  k.reserve(1 + a.size());
  k.push_back(static_cast<char>(kind));
  k.append(a);
  return k;
}

// Splits "<kind><client>\0<rest>".
bool split(std::string_view key, Kind kind, std::string& client, std::string_view& rest) {
  if (key.empty() || key[0] != static_cast<char>(kind)) return false;
  key.remove_prefix(1);
  size_t zero = key.find('\0');
  if (zero == std::string_view::npos) return false;
  client.assign(key.substr(0, zero));
  rest = key.substr(zero + 1);
  return true;
}

}  // namespace

std::string session_key(std::string_view client) {
  return keyed(Kind::Session, client);
}
std::string will_key(std::string_view client) {
  return keyed(Kind::Will, client);
}
std::string retained_key(std::string_view topic) {
  return keyed(Kind::Retained, topic);
}
std::string kafka_outbox_key(uint64_t seq) {
  std::string k(1, static_cast<char>(Kind::KafkaOutbox));
  put_u64(k, seq);  // big-endian: key order is acceptance order
  return k;
}

std::string cluster_inbox_key(std::string_view topic, int32_t partition) {
  std::string k = keyed(Kind::ClusterInbox, topic);
  k.push_back('\0');
  put_u32(k, static_cast<uint32_t>(partition));
  return k;
}

std::string cluster_inbox_value(int64_t offset) {
  std::string v;
  put_u64(v, static_cast<uint64_t>(offset));
  return v;
}

std::string client_prefix(Kind kind, std::string_view client) {
  std::string k = keyed(kind, client);
  k.push_back('\0');
  return k;
}

std::string subscription_key(std::string_view client, std::string_view filter) {
  std::string k = client_prefix(Kind::Subscription, client);
  k.append(filter);
  return k;
}

std::string queued_key(std::string_view client, uint64_t seq) {
  std::string k = client_prefix(Kind::Queued, client);
  put_u64(k, seq);  // big-endian: keys sort in queue order
  return k;
}

std::string inbound_key(std::string_view client, uint16_t packet_id) {
  std::string k = client_prefix(Kind::InboundQos2, client);
  put_u16(k, packet_id);
  return k;
}

bool parse_client_key(std::string_view key, std::string& client) {
  if (key.size() < 1 || (key[0] != 'S' && key[0] != 'W')) return false;
  client.assign(key.substr(1));
  return true;
}

bool parse_subscription_key(std::string_view key, std::string& client, std::string& filter) {
  std::string_view rest;
  if (!split(key, Kind::Subscription, client, rest) || rest.empty()) return false;
  filter.assign(rest);
  return true;
}

bool parse_queued_key(std::string_view key, std::string& client, uint64_t& seq) {
  std::string_view rest;
  if (!split(key, Kind::Queued, client, rest) || rest.size() != 8) return false;
  Reader r(rest);
  seq = r.u64();
  return r.done();
}

bool parse_inbound_key(std::string_view key, std::string& client, uint16_t& packet_id) {
  std::string_view rest;
  if (!split(key, Kind::InboundQos2, client, rest) || rest.size() != 2) return false;
  Reader r(rest);
  packet_id = r.u16();
  return r.done();
}

bool parse_retained_key(std::string_view key, std::string& topic) {
  if (key.size() < 2 || key[0] != static_cast<char>(Kind::Retained)) return false;
  topic.assign(key.substr(1));
  return true;
}

bool parse_kafka_outbox_key(std::string_view key, uint64_t& seq) {
  if (key.size() != 9 || key[0] != static_cast<char>(Kind::KafkaOutbox)) return false;
  Reader r(key.substr(1));
  seq = r.u64();
  return r.done();
}

bool parse_cluster_inbox(std::string_view key, std::string_view value, std::string& topic,
                         int32_t& partition, int64_t& offset) {
  if (key.size() < 7 || key[0] != static_cast<char>(Kind::ClusterInbox)) return false;
  const size_t nul = key.size() - 5;
  if (key[nul] != '\0') return false;
  topic.assign(key.substr(1, nul - 1));
  Reader k(key.substr(nul + 1));
  partition = static_cast<int32_t>(k.u32());
  Reader v(value);
  offset = static_cast<int64_t>(v.u64());
  return k.done() && v.done();
}

std::string encode(const SessionRecord& s) {
  std::string out;
  put_u8(out, kVersion);
  put_u32(out, s.expiry_interval);
  put_u64(out, s.disconnected_at_ms);
  return out;
}

std::string encode(const SubscriptionRecord& s) {
  std::string out;
  put_u8(out, kVersion);
  put_u8(out, s.qos);
  put_u8(out, static_cast<uint8_t>((s.no_local ? 1 : 0) | (s.retain_as_published ? 2 : 0)));
  put_u8(out, s.retain_handling);
  put_u32(out, s.subscription_id);
  return out;
}

std::string encode(const MessageRecord& m) {
  std::string out;
  put_u8(out, kVersion);
  write_message(out, m);
  return out;
}

std::string encode(const QueuedRecord& q) {
  std::string out;
  put_u8(out, kVersion);
  write_message(out, q.message);
  put_u8(out, q.qos);
  put_u8(out, q.retain ? 1 : 0);
  put_u8(out, static_cast<uint8_t>(q.state));
  put_u16(out, q.packet_id);
  put_u32(out, static_cast<uint32_t>(q.subscription_ids.size()));
  for (uint32_t id : q.subscription_ids)
    put_u32(out, id);
  put_bytes(out, q.share_group);
  return out;
}

std::string encode(const WillRecord& w) {
  std::string out;
  put_u8(out, kVersion);
  write_message(out, w.message);
  put_u32(out, w.delay_interval);
  put_u64(out, w.due_ms);
  return out;
}

bool decode(std::string_view in, SessionRecord& s) {
  Reader r(in);
  if (r.u8() != kVersion) return false;
  s.expiry_interval = r.u32();
  s.disconnected_at_ms = r.u64();
  return r.done();
}

bool decode(std::string_view in, SubscriptionRecord& s) {
  Reader r(in);
  if (r.u8() != kVersion) return false;
  s.qos = r.u8();
  uint8_t flags = r.u8();
  s.no_local = flags & 1;
  s.retain_as_published = flags & 2;
  s.retain_handling = r.u8();
  s.subscription_id = r.u32();
  return r.done() && s.qos <= 2 && s.retain_handling <= 2;
}

bool decode(std::string_view in, MessageRecord& m) {
  Reader r(in);
  if (r.u8() != kVersion) return false;
  read_message(r, m);
  return r.done() && m.qos <= 2;
}

bool decode(std::string_view in, QueuedRecord& q) {
  Reader r(in);
  if (r.u8() != kVersion) return false;
  read_message(r, q.message);
  q.qos = r.u8();
  q.retain = r.u8() != 0;
  uint8_t state = r.u8();
  q.packet_id = r.u16();
  uint32_t n = r.u32();
  q.subscription_ids.clear();
  for (uint32_t i = 0; i < n && r.ok(); ++i)
    q.subscription_ids.push_back(r.u32());
  q.share_group = r.bytes();
  if (state > 2) return false;
  q.state = static_cast<QueueState>(state);
  return r.done() && q.qos <= 2;
}

bool decode(std::string_view in, WillRecord& w) {
  Reader r(in);
  if (r.u8() != kVersion) return false;
  read_message(r, w.message);
  w.delay_interval = r.u32();
  w.due_ms = r.u64();
  return r.done();
}

std::string encode(const KafkaOutboxRecord& k) {
  std::string out;
  put_u8(out, kVersion);
  put_u32(out, k.rule);
  put_bytes(out, k.topic);
  put_optional(out, k.key);
  put_bytes(out, k.value);
  put_u32(out, static_cast<uint32_t>(k.headers.size()));
  for (const auto& [name, value] : k.headers) {
    put_bytes(out, name);
    put_bytes(out, value);
  }
  return out;
}

bool decode(std::string_view in, KafkaOutboxRecord& k) {
  Reader r(in);
  if (r.u8() != kVersion) return false;
  k.rule = r.u32();
  k.topic = r.bytes();
  k.key = r.optional_bytes();
  k.value = r.bytes();
  uint32_t n = r.u32();
  k.headers.clear();
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    std::string name = r.bytes();
    std::string value = r.bytes();
    k.headers.emplace_back(std::move(name), std::move(value));
  }
  return r.done();
}

}  // namespace starling::store
