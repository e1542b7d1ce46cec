// Topic names and topic filters (section 4.7): validation and matching rules.
#pragma once

#include <cstddef>
#include <string_view>

namespace starling::mqtt {

// Well-formed UTF-8 as MQTT requires (section 1.5.4): no U+0000, no surrogates, no overlong
// forms. Control characters other than U+0000 are allowed.
bool valid_utf8(std::string_view s);

// Whether text holds '+' or '#' (two vectorized scans; find_first_of("+#") would make a
// library call per character, on every PUBLISH).
bool has_wildcard(std::string_view text);

// A PUBLISH topic: non-empty, valid UTF-8, no '+' or '#', at most 65535 bytes.
bool valid_topic_name(std::string_view topic);

// Topic names no client may publish to: "$SYS" and below, where the broker publishes its own
// statistics (a client could spoof them), and "$share" and below, the shared-subscription
// prefix, which names no topic. Section 4.7.2: the server SHOULD prevent clients from using
// '$' topic names to exchange messages with other clients.
bool reserved_topic_name(std::string_view topic);

// A SUBSCRIBE filter: non-empty; '#' only as the whole last level; '+' only as a whole level.
// Shared filters "$share/{group}/{filter}" are accepted when the group is non-empty and holds
// no '+', '#' or '/', and the filter after it is valid.
bool valid_topic_filter(std::string_view filter);

// Levels of a topic name or filter: "a/b" has 2, "" and "a" have 1 (limits.max_topic_levels).
size_t topic_levels(std::string_view topic);

// Splits "$share/group/filter". Returns false when the filter is not a shared one.
bool split_shared_filter(std::string_view filter, std::string_view& group, std::string_view& rest);

// Does the (non-shared) filter match the topic? '$'-topics are not matched by a filter that
// starts with '+' or '#'.
bool topic_matches(std::string_view filter, std::string_view topic);

}  // namespace starling::mqtt
