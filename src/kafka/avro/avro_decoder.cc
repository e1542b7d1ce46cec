#include "kafka/avro/avro_decoder.h"

#include <avro.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace starling::kafka {

bool parse_confluent_frame(std::string_view payload, int32_t& schema_id, std::string_view& body,
                           std::string& error) {
  if (payload.size() < 5) {
    error = "Confluent Avro frame too short: " + std::to_string(payload.size()) +
            " bytes, need at least 5";
    return false;
  }
  if (payload[0] != 0) {
    error = "Confluent Avro frame has magic byte " +
            std::to_string(static_cast<uint8_t>(payload[0])) + ", expected 0";
    return false;
  }
  const auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(payload[i])); };
  schema_id = static_cast<int32_t>(b(1) << 24 | b(2) << 16 | b(3) << 8 | b(4));
  body = payload.substr(5);
  return true;
}

namespace {

// Floats and doubles are read by copying their bytes.
static_assert(std::endian::native == std::endian::little);

// libavro 1.11 as Debian builds it keeps its error text in one global buffer (it is built
// without THREADSAFE, so not thread-local), written when a call fails. Schema parsing is the
// only use of libavro here; it runs under this lock so the text read is the parse's own.
std::mutex& libavro_mutex() {
  static std::mutex m;
  return m;
}

constexpr size_t kInfinite = std::numeric_limits<size_t>::max();
constexpr int kMaxSchemaDepth = 256;

size_t add_sizes(size_t a, size_t b) {
  return a > kInfinite - b ? kInfinite : a + b;
}

// Appends one code point as jansson does with JSON_ENSURE_ASCII (avro_value_to_json's flags).
void append_code_point(std::string& out, uint32_t cp) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  const auto u = [&](uint32_t x) {
    const char e[6] = {'\\',        'u', kHex[x >> 12 & 15], kHex[x >> 8 & 15], kHex[x >> 4 & 15],
                       kHex[x & 15]};
    out.append(e, 6);
  };
  switch (cp) {
    case '"':
      out += "\\\"";
      return;
    case '\\':
      out += "\\\\";
      return;
    case '\b':
      out += "\\b";
      return;
    case '\f':
      out += "\\f";
      return;
    case '\n':
      out += "\\n";
      return;
    case '\r':
      out += "\\r";
      return;
    case '\t':
      out += "\\t";
      return;
  }
  if (cp < 0x20 || (cp > 0x7F && cp <= 0xFFFF)) {
    u(cp);
  } else if (cp <= 0x7F) {
    out += static_cast<char>(cp);
  } else {
    cp -= 0x10000;
    u(0xD800 | cp >> 10);
    u(0xDC00 | (cp & 0x3FF));
  }
}

// Appends UTF-8 text as a JSON string. False on anything but strict UTF-8 (overlong forms,
// surrogates and code points past U+10FFFF are refused, as jansson does).
bool append_json_string(std::string& out, std::string_view s) {
  out += '"';
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      // Runs of plain ASCII in one append.
      size_t j = i + 1;
      while (j < s.size()) {
        const auto d = static_cast<uint8_t>(s[j]);
        if (d < 0x20 || d >= 0x80 || d == '"' || d == '\\') break;
        ++j;
      }
      out.append(s.substr(i, j - i));
      i = j;
      continue;
    }
    size_t len = 0;
    uint32_t cp;
    if (c < 0x80) {
      len = 1;
      cp = c;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = cp << 6 | (cc & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    append_code_point(out, cp);
    i += len;
  }
  out += '"';
  return true;
}

// Bytes and fixed: each byte is the code point of the same value, as libavro encodes them.
void append_json_bytes(std::string& out, std::string_view bytes) {
  out += '"';
  for (char c : bytes)
    append_code_point(out, static_cast<uint8_t>(c));
  out += '"';
}

// The shortest text that reads back as the same value, shaped as jansson writes reals: always a
// "." or an exponent (so it reads back as a real), no "+" or leading zeros in the exponent.
template <class T>
void append_json_real(std::string& out, T v) {
  if (std::isnan(v)) {
    out += "\"NaN\"";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
    return;
  }
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  const std::string_view s(buf, static_cast<size_t>(r.ptr - buf));
  const size_t e = s.find('e');
  if (e == std::string_view::npos) {
    out += s;
    if (s.find('.') == std::string_view::npos) out += ".0";
    return;
  }
  out += s.substr(0, e + 1);
  size_t i = e + 1;
  if (s[i] == '+') {
    ++i;
  } else if (s[i] == '-') {
    out += '-';
    ++i;
  }
  while (i + 1 < s.size() && s[i] == '0')
    ++i;
  out += s.substr(i);
}

enum class Kind : uint8_t {
  Null,
  Boolean,
  Int,
  Long,
  Float,
  Double,
  Bytes,
  String,
  Record,
  Enum,
  Array,
  Map,
  Union,
  Fixed
};

// The schema as the decoder walks it; a recursive schema is a cycle of indexes.
struct Node {
  Kind kind = Kind::Null;
  int64_t count = 0;               // enum symbols, fixed size
  std::vector<uint32_t> children;  // record fields, union branches, array items, map values
  // JSON written ahead of each child: `"field": ` for records, `{"branch": ` for unions (empty
  // for a null branch), `"SYMBOL"` for each enum symbol.
  std::vector<std::string> labels;
  size_t min_size = kInfinite;  // fewest bytes a value takes
  std::string name;             // records, for error messages
};

std::string json_label(std::string_view text, std::string_view after) {
  std::string out;
  append_json_string(out, text);
  out += after;
  return out;
}

class TreeBuilder {
 public:
  std::vector<Node> nodes;
  std::string error;

  // Appends the node for schema (once per named type); false and error on a schema no body
  // could decode with.
  bool build(avro_schema_t schema, int depth, uint32_t& index) {
    if (depth > kMaxSchemaDepth) return fail("schema nested deeper than 256 levels");
    if (is_avro_link(schema)) schema = avro_schema_link_target(schema);
    if (schema == nullptr) return fail("schema has a dangling named-type reference");
    if (const auto it = named_.find(schema); it != named_.end()) {
      index = it->second;
      return true;
    }
    index = static_cast<uint32_t>(nodes.size());
    nodes.emplace_back();
    Node n;
    switch (avro_typeof(schema)) {
      case AVRO_NULL:
        n.kind = Kind::Null;
        break;
      case AVRO_BOOLEAN:
        n.kind = Kind::Boolean;
        break;
      case AVRO_INT32:
        n.kind = Kind::Int;
        break;
      case AVRO_INT64:
        n.kind = Kind::Long;
        break;
      case AVRO_FLOAT:
        n.kind = Kind::Float;
        break;
      case AVRO_DOUBLE:
        n.kind = Kind::Double;
        break;
      case AVRO_BYTES:
        n.kind = Kind::Bytes;
        break;
      case AVRO_STRING:
        n.kind = Kind::String;
        break;
      case AVRO_RECORD: {
        n.kind = Kind::Record;
        const char* name = avro_schema_name(schema);
        n.name = name != nullptr ? name : "?";
        // Registered before the fields, so a field referring back to it finds this index.
        named_.emplace(schema, index);
        const size_t fields = avro_schema_record_size(schema);
        for (size_t i = 0; i < fields; ++i) {
          const auto at = static_cast<int>(i);
          avro_schema_t field = avro_schema_record_field_get_by_index(schema, at);
          const char* field_name = avro_schema_record_field_name(schema, at);
          if (field == nullptr || field_name == nullptr)
            return fail("record field without a schema");
          uint32_t child;
          if (!build(field, depth + 1, child)) return false;
          n.children.push_back(child);
          n.labels.push_back(json_label(field_name, ": "));
        }
        break;
      }
      case AVRO_ENUM: {
        n.kind = Kind::Enum;
        named_.emplace(schema, index);
        n.count = avro_schema_enum_number_of_symbols(schema);
        if (n.count <= 0) return fail("enum without symbols");
        for (int64_t i = 0; i < n.count; ++i) {
          const char* symbol = avro_schema_enum_get(schema, static_cast<int>(i));
          std::string label;
          if (symbol == nullptr || !append_json_string(label, symbol))
            return fail("enum symbol is not UTF-8 text");
          n.labels.push_back(std::move(label));
        }
        break;
      }
      case AVRO_FIXED:
        n.kind = Kind::Fixed;
        named_.emplace(schema, index);
        n.count = avro_schema_fixed_size(schema);
        if (n.count < 0) return fail("fixed with a negative size");
        break;
      case AVRO_ARRAY:
      case AVRO_MAP: {
        n.kind = avro_typeof(schema) == AVRO_ARRAY ? Kind::Array : Kind::Map;
        avro_schema_t child_schema = n.kind == Kind::Array ? avro_schema_array_items(schema)
                                                           : avro_schema_map_values(schema);
        if (child_schema == nullptr) return fail("array or map without an item schema");
        uint32_t child;
        if (!build(child_schema, depth + 1, child)) return false;
        n.children.push_back(child);
        break;
      }
      case AVRO_UNION: {
        n.kind = Kind::Union;
        const size_t branches = avro_schema_union_size(schema);
        if (branches == 0) return fail("union without branches");
        for (size_t i = 0; i < branches; ++i) {
          avro_schema_t branch = avro_schema_union_branch(schema, static_cast<int>(i));
          // For named types the short name, as avro_value_to_json keys them.
          const char* type_name = branch != nullptr ? avro_schema_type_name(branch) : nullptr;
          if (type_name == nullptr) return fail("union branch without a schema");
          uint32_t child;
          if (!build(branch, depth + 1, child)) return false;
          n.children.push_back(child);
          n.labels.push_back(avro_typeof(branch) == AVRO_NULL ? std::string()
                                                              : "{" + json_label(type_name, ": "));
        }
        break;
      }
      default:
        return fail("unknown Avro schema type");
    }
    nodes[index] = std::move(n);
    return true;
  }

  // The fewest bytes each value takes, by iterating to the fixed point (recursion makes this a
  // graph). Children come after their parent, so going backwards settles all but references
  // back up in one pass. A record left infinite contains itself other than through a union,
  // array or map: no body of it can end.
  bool compute_min_sizes() {
    for (bool changed = true; changed;) {
      changed = false;
      for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
        Node& n = *it;
        size_t m = kInfinite;
        switch (n.kind) {
          case Kind::Null:
            m = 0;
            break;
          case Kind::Boolean:
          case Kind::Int:
          case Kind::Long:
          case Kind::Bytes:
          case Kind::String:
          case Kind::Enum:
          case Kind::Array:
          case Kind::Map:
            m = 1;
            break;
          case Kind::Float:
            m = 4;
            break;
          case Kind::Double:
            m = 8;
            break;
          case Kind::Fixed:
            m = static_cast<size_t>(n.count);
            break;
          case Kind::Record:
            m = 0;
            for (uint32_t c : n.children)
              m = add_sizes(m, nodes[c].min_size);
            break;
          case Kind::Union:
            for (uint32_t c : n.children)
              m = std::min(m, nodes[c].min_size);
            m = add_sizes(m, 1);
            break;
        }
        if (m < n.min_size) {
          n.min_size = m;
          changed = true;
        }
      }
    }
    for (const Node& n : nodes) {
      if (n.min_size == kInfinite)
        return fail("record " + n.name +
                    " contains itself other than through a union, array or map");
    }
    return true;
  }

 private:
  bool fail(std::string reason) {
    error = std::move(reason);
    return false;
  }

  std::unordered_map<avro_schema_t, uint32_t> named_;
};

// Reads one body along the schema and writes its JSON. Every length and count is checked
// against the bytes left before anything is read.
class Decoder {
 public:
  Decoder(const std::vector<Node>& nodes, std::string_view body, std::string& out)
      : nodes_(nodes),
        begin_(reinterpret_cast<const uint8_t*>(body.data())),
        p_(begin_),
        end_(begin_ + body.size()),
        out_(out) {}

  bool run(std::string& error) {
    out_.clear();
    const bool ok =
        value(0, 1) &&
        (p_ == end_ || fail(std::to_string(remaining()) + " bytes left after the value"));
    if (!ok) error = std::move(error_);
    return ok;
  }

 private:
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }

  bool fail(std::string reason) {
    error_ = "Avro body invalid at byte " + std::to_string(p_ - begin_) + ": " + reason;
    return false;
  }

  // Zigzag varint of at most 10 bytes; bits past 64 are dropped, as libavro does.
  bool read_long(int64_t& out) {
    uint64_t v = 0;
    for (int i = 0; i < 10; ++i) {
      if (p_ == end_) return fail("truncated");
      const uint8_t b = *p_++;
      v |= static_cast<uint64_t>(b & 0x7F) << (7 * i);
      if ((b & 0x80) == 0) {
        out = static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1));
        return true;
      }
    }
    return fail("varint longer than 10 bytes");
  }

  // Errors name the offset of the length itself.
  bool read_length(size_t& out, const char* what) {
    const uint8_t* at = p_;
    int64_t len = 0;
    if (!read_long(len)) return false;
    const size_t left = remaining();
    if (len < 0 || static_cast<uint64_t>(len) > left) {
      p_ = at;
      return fail(len < 0 ? std::string("negative ") + what + " length " + std::to_string(len)
                          : std::string(what) + " length " + std::to_string(len) + " exceeds the " +
                                std::to_string(left) + " bytes left");
    }
    out = static_cast<size_t>(len);
    return true;
  }

  bool read_text(std::string_view& out, const char* what) {
    size_t len = 0;
    if (!read_length(len, what)) return false;
    out = {reinterpret_cast<const char*>(p_), len};
    if (!append_json_string(out_, out)) return fail(std::string(what) + " is not UTF-8");
    p_ += len;
    return true;
  }

  template <class T>
  bool real() {
    if (remaining() < sizeof(T)) return fail("truncated");
    T v;
    std::memcpy(&v, p_, sizeof(T));
    p_ += sizeof(T);
    append_json_real(out_, v);
    return true;
  }

  bool blocks(const Node& n, int depth) {
    const bool map = n.kind == Kind::Map;
    const uint32_t child = n.children[0];
    // A map entry is at least its key's length byte.
    const size_t item_min = map ? add_sizes(nodes_[child].min_size, 1) : nodes_[child].min_size;
    std::unordered_set<std::string_view> keys;
    out_ += map ? '{' : '[';
    bool first = true;
    for (;;) {
      int64_t count = 0;
      if (!read_long(count)) return false;
      if (count == 0) break;
      if (count < 0) {
        if (count == std::numeric_limits<int64_t>::min()) return fail("block count out of range");
        count = -count;
        // The block's size in bytes, for readers that skip; not needed to decode.
        size_t size;
        if (!read_length(size, "block")) return false;
      }
      const auto items = static_cast<uint64_t>(count);
      if (item_min > 0) {
        if (items > remaining() / item_min)
          return fail("block of " + std::to_string(items) + " items exceeds the " +
                      std::to_string(remaining()) + " bytes left");
      } else {
        if (items > AvroSchema::kMaxEmptyItems - empty_items_)
          return fail("more than " + std::to_string(AvroSchema::kMaxEmptyItems) +
                      " items that take no bytes");
        empty_items_ += items;
      }
      for (uint64_t i = 0; i < items; ++i) {
        if (!first) out_ += ", ";
        first = false;
        if (map) {
          const uint8_t* key_at = p_;
          std::string_view key;
          if (!read_text(key, "map key")) return false;
          if (!keys.insert(key).second) {
            p_ = key_at;
            return fail("map key given twice");
          }
          out_ += ": ";
        }
        if (!value(child, depth + 1)) return false;
      }
    }
    out_ += map ? '}' : ']';
    return true;
  }

  bool value(uint32_t index, int depth) {
    if (depth > AvroSchema::kMaxDepth)
      return fail("values nested deeper than " + std::to_string(AvroSchema::kMaxDepth));
    if (out_.size() > AvroSchema::kMaxJsonSize)
      return fail("JSON longer than " + std::to_string(AvroSchema::kMaxJsonSize) + " bytes");
    const Node& n = nodes_[index];
    switch (n.kind) {
      case Kind::Null:
        out_ += "null";
        return true;
      case Kind::Boolean:
        if (p_ == end_) return fail("truncated");
        if (*p_ > 1) return fail("boolean byte " + std::to_string(*p_) + " is not 0 or 1");
        out_ += *p_++ ? "true" : "false";
        return true;
      case Kind::Int:
      case Kind::Long: {
        int64_t v;
        if (!read_long(v)) return false;
        if (n.kind == Kind::Int &&
            (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()))
          return fail("int " + std::to_string(v) + " out of range");
        char buf[24];
        out_.append(buf, std::to_chars(buf, buf + sizeof(buf), v).ptr);
        return true;
      }
      case Kind::Float:
        return real<float>();
      case Kind::Double:
        return real<double>();
      case Kind::Bytes: {
        size_t len;
        if (!read_length(len, "bytes")) return false;
        append_json_bytes(out_, {reinterpret_cast<const char*>(p_), len});
        p_ += len;
        return true;
      }
      case Kind::String: {
        std::string_view s;
        return read_text(s, "string");
      }
      case Kind::Enum: {
        int64_t v;
        if (!read_long(v)) return false;
        if (v < 0 || v >= n.count)
          return fail("enum index " + std::to_string(v) + " out of range (" +
                      std::to_string(n.count) + " symbols)");
        out_ += n.labels[static_cast<size_t>(v)];
        return true;
      }
      case Kind::Fixed: {
        const auto size = static_cast<uint64_t>(n.count);
        if (remaining() < size) return fail("truncated");
        append_json_bytes(out_, {reinterpret_cast<const char*>(p_), size});
        p_ += size;
        return true;
      }
      case Kind::Record:
        out_ += '{';
        for (size_t i = 0; i < n.children.size(); ++i) {
          if (i > 0) out_ += ", ";
          out_ += n.labels[i];
          if (!value(n.children[i], depth + 1)) return false;
        }
        out_ += '}';
        return true;
      case Kind::Union: {
        int64_t branch;
        if (!read_long(branch)) return false;
        if (branch < 0 || static_cast<uint64_t>(branch) >= n.children.size())
          return fail("union branch " + std::to_string(branch) + " out of range (" +
                      std::to_string(n.children.size()) + " branches)");
        const auto b = static_cast<size_t>(branch);
        out_ += n.labels[b];
        if (!value(n.children[b], depth + 1)) return false;
        if (!n.labels[b].empty()) out_ += '}';
        return true;
      }
      case Kind::Array:
      case Kind::Map:
        return blocks(n, depth);
    }
    return fail("unknown schema node");
  }

  const std::vector<Node>& nodes_;
  const uint8_t* begin_;
  const uint8_t* p_;
  const uint8_t* end_;
  std::string& out_;
  uint64_t empty_items_ = 0;
  std::string error_;
};

struct SchemaDeleter {
  void operator()(avro_obj_t* s) const { avro_schema_decref(s); }
};

}  // namespace

struct AvroSchema::Impl {
  std::vector<Node> nodes;  // nodes[0] is the root
};

AvroSchema::AvroSchema(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AvroSchema::~AvroSchema() = default;

std::shared_ptr<const AvroSchema> AvroSchema::parse(std::string_view schema_json,
                                                    std::string& error) {
  std::unique_ptr<avro_obj_t, SchemaDeleter> schema;
  TreeBuilder builder;
  {
    std::lock_guard lock(libavro_mutex());
    avro_schema_t raw = nullptr;
    // libavro rejects a null pointer even with length 0.
    const char* text = schema_json.data() != nullptr ? schema_json.data() : "";
    if (avro_schema_from_json_length(text, schema_json.size(), &raw) != 0) {
      error = std::string("invalid Avro schema: ") + avro_strerror();
      return nullptr;
    }
    schema.reset(raw);
    uint32_t root;
    if (!builder.build(schema.get(), 1, root)) {
      error = "unsupported Avro schema: " + builder.error;
      return nullptr;
    }
  }
  if (!builder.compute_min_sizes()) {
    error = "unsupported Avro schema: " + builder.error;
    return nullptr;
  }
  auto impl = std::make_unique<Impl>();
  impl->nodes = std::move(builder.nodes);
  return std::shared_ptr<const AvroSchema>(new AvroSchema(std::move(impl)));
}

bool AvroSchema::to_json(std::string_view body, std::string& json, std::string& error) const {
  return Decoder(impl_->nodes, body, json).run(error);
}

}  // namespace starling::kafka
