// How the config file is read: toml++ parses it, a Reader turns TOML values into typed settings
// with errors that name the file, the line and the key, and a table's keys are read by a list of
// Fields (name -> member), so a section is a list of fields and a misspelt key is found by
// comparing against it. Internal to src/config: the only header that brings toml++.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

// toml++ is compiled once, in reader.cc (TOML_IMPLEMENTATION); the other files of src/config
// see only its declarations, and nothing needs to link libtomlplusplus. It lives in
// /usr/include, so g++ treats it as a system header and -Wall -Wextra -Wpedantic -Werror do not
// apply inside it.
//
// toml++ 3.3 (Debian 12) marks a branch unreachable that some code points reach
// (is_non_ascii_horizontal_whitespace; fuzz_config found it). parse_toml() keeps such text from
// the parser; should another path get there, a trap is a clean crash where
// __builtin_unreachable() would be undefined behaviour. Every file includes toml++ through here,
// so they all agree on both settings.
#define TOML_HEADER_ONLY 0
#include <toml++/impl/preprocessor.h>
#undef TOML_UNREACHABLE
#define TOML_UNREACHABLE __builtin_trap()
#include <toml++/toml.h>

#include "config/endpoint.h"
#include "config/error.h"

namespace starling::config {

std::string quoted(std::string_view s);
std::string join(std::span<const std::string_view> words);  // "a, b, c"
bool one_of(std::string_view value, std::span<const std::string_view> allowed);

inline int line_of(const toml::source_region& region) {
  return static_cast<int>(region.begin.line);
}

// Parses the file's text. Throws ConfigError with the line of a syntax error.
toml::table parse_toml(const std::string& text, const std::string& path);

class Reader;

// One known key of a table: how to read its value into S. `path` is the key's full name
// ("http.max_body_bytes"), for messages.
template <typename S>
struct Field {
  std::string_view name;
  std::function<void(const Reader&, S&, const toml::node&, const std::string& path)> read;
};

// Reads TOML values, failing with ConfigError at the value's line.
class Reader {
 public:
  explicit Reader(const std::string& file) : file_(file) {}

  [[noreturn]] void fail(int line, const std::string& reason) const {
    throw ConfigError(file_, line, reason);
  }
  [[noreturn]] void fail(const toml::node& node, const std::string& reason) const {
    fail(line_of(node.source()), reason);
  }

  int64_t integer(const toml::node& node, const std::string& path, int64_t lo, int64_t hi) const;
  bool boolean(const toml::node& node, const std::string& path) const;
  std::string string(const toml::node& node, const std::string& path) const;
  std::string one_of_strings(const toml::node& node, const std::string& path,
                             std::span<const std::string_view> allowed) const;
  // A path to a file that exists and can be read now, so a typo fails at load with its line
  // rather than when the file is first used.
  std::string readable_file(const toml::node& node, const std::string& path) const;
  // "Name: value" lines for outgoing HTTP requests.
  std::vector<std::string> header_lines(const toml::node& node, const std::string& path) const;
  // An http:// or https:// URL with a host (trailing slashes kept).
  std::string http_url(const toml::node& node, const std::string& path) const;
  // A bind address for a listener or the HTTP server: a fixed, non-zero port.
  Endpoint bind(const toml::node& node, const std::string& path) const;
  const toml::table& table(const toml::node& node, const std::string& path) const;

  // An array of strings, each passing check(item, value) (which fails with its own reason).
  template <typename Check>
  std::vector<std::string> string_array(const toml::node& node, const std::string& path,
                                        bool allow_empty, Check check) const {
    const auto* array = node.as_array();
    if (array == nullptr || (!allow_empty && array->empty())) {
      fail(node, path + " must be " + (allow_empty ? "an" : "a non-empty") + " array of strings");
    }
    std::vector<std::string> out;
    for (const toml::node& item : *array) {
      std::string value = string(item, path);
      check(item, value);
      out.push_back(std::move(value));
    }
    return out;
  }
  std::vector<std::string> string_array(const toml::node& node, const std::string& path,
                                        bool allow_empty) const {
    return string_array(node, path, allow_empty, [](const toml::node&, const std::string&) {});
  }

  // Reads every key of `table` with the matching field; any other key is an error.
  template <typename S>
  void read_table(S& out, const toml::table& table, const std::string& prefix,
                  std::span<const Field<S>> fields) const {
    for (auto&& [key, node] : table) {
      std::string path =
          prefix.empty() ? std::string(key.str()) : prefix + "." + std::string(key.str());
      // By name, not the binding: clang 14 cannot capture structured bindings.
      std::string_view name = key.str();
      auto field = std::find_if(fields.begin(), fields.end(),
                                [name](const Field<S>& f) { return f.name == name; });
      if (field == fields.end()) {
        std::vector<std::string_view> known;
        for (const Field<S>& f : fields)
          known.push_back(f.name);
        unknown_key(key, node, path, known);
      }
      field->read(*this, out, node, path);
    }
  }

  // A table of named tables ([listeners.NAME], [http.tokens.NAME]): each(name, table, path)
  // reads one. `what` names one in messages ("listener"), `example` is a name to show.
  template <typename Each>
  void named_tables(const toml::node& node, const std::string& path, std::string_view what,
                    std::string_view example, Each each) const {
    const auto* tables = node.as_table();
    if (tables == nullptr) {
      fail(node, path + " must be a table of " + std::string(what) + "s, e.g. [" + path + "." +
                     std::string(example) + "]");
    }
    for (auto&& [key, value] : *tables) {
      std::string name(key.str());
      std::string item_path = path + "." + name;
      if (name.empty())
        fail(line_of(key.source()), "a " + std::string(what) + " needs a non-empty name");
      each(name, table(value, item_path), item_path);
    }
  }

  // An array of tables ([[kafka.produce]]): each(table, path) reads one, path being "NAME[i]".
  template <typename Each>
  void table_array(const toml::node& node, const std::string& path, Each each) const {
    const auto* array = node.as_array();
    if (array == nullptr) fail(node, path + " must be an array of tables: [[" + path + "]]");
    size_t i = 0;
    for (const toml::node& item : *array) {
      std::string item_path = path + "[" + std::to_string(i++) + "]";
      each(table(item, item_path), item_path);
    }
  }

 private:
  // Fails with "unknown key", and a "did you mean" for a near miss among `known`.
  [[noreturn]] void unknown_key(const toml::key& key, const toml::node& node,
                                const std::string& path,
                                const std::vector<std::string_view>& known) const;

  const std::string& file_;
};

// --- Fields -----------------------------------------------------------------------------------

// The one field reader: read(reader, node, path) checks the TOML value and makes the member's
// value of it (a Reader method such as &Reader::boolean, or a lambda for a check of its own).
template <typename S, typename M, typename Read>
Field<S> field(std::string_view name, M S::*member, Read read) {
  return {name,
          [member, read](const Reader& r, S& s, const toml::node& n, const std::string& path) {
            s.*member = std::invoke(read, r, n, path);
          }};
}

// The largest value of an unsigned member type, clipped to what TOML integers can hold.
template <typename M>
constexpr int64_t max_of() {
  if constexpr (sizeof(M) >= sizeof(int64_t)) {
    return std::numeric_limits<int64_t>::max();
  } else {
    return static_cast<int64_t>(std::numeric_limits<M>::max());
  }
}

// An integer in lo..hi; by default anything the member can hold.
template <typename S, typename M>
Field<S> integer_field(std::string_view name, M S::*member, int64_t lo = 0,
                       int64_t hi = max_of<M>()) {
  return field(name, member, [lo, hi](const Reader& r, const toml::node& n, const std::string& p) {
    return static_cast<M>(r.integer(n, p, lo, hi));
  });
}

template <typename S>
Field<S> bool_field(std::string_view name, bool S::*member) {
  return field(name, member, &Reader::boolean);
}

template <typename S>
Field<S> string_field(std::string_view name, std::string S::*member) {
  return field(name, member, &Reader::string);
}

// A file read when the setting is used (at start, on SIGHUP): checked at load.
template <typename S>
Field<S> file_field(std::string_view name, std::string S::*member) {
  return field(name, member, &Reader::readable_file);
}

template <typename S>
Field<S> url_field(std::string_view name, std::string S::*member) {
  return field(name, member, &Reader::http_url);
}

template <typename S>
Field<S> one_of_field(std::string_view name, std::string S::*member,
                      std::span<const std::string_view> allowed) {
  return field(name, member, [allowed](const Reader& r, const toml::node& n, const std::string& p) {
    return r.one_of_strings(n, p, allowed);
  });
}

// A [section] of the file, read into the member with the section's own fields.
template <typename Top, typename S>
Field<Top> section(std::string_view name, S Top::*member, const std::vector<Field<S>>& fields) {
  return {name, [member, &fields](const Reader& r, Top& top, const toml::node& n,
                                  const std::string& path) {
            r.read_table<S>(top.*member, r.table(n, path), path, fields);
          }};
}

}  // namespace starling::config
