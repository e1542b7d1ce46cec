// A broker message as a cluster record and back: forwards to another node's inbox and the
// retained log carry the same MessageRecord.
#pragma once

#include <string>

#include "broker/ingress.h"
#include "broker/message.h"
#include "cluster/wire/records.h"

namespace starling::cluster {

// plain and groups are left for the caller (they differ per destination).
MessageRecord to_message_record(const broker::Message& msg, const std::string& node);
// For the retained store: null when the message expired on its way.
broker::MessagePtr to_message(MessageRecord&& record, broker::Clock::time_point now);
// A forward for the front door; false when it expired on its way.
bool to_publication(MessageRecord&& record, broker::Publication& out);
// The record's age by the two nodes' wall clocks, in microseconds (0 when the clocks disagree).
uint64_t age_us(const MessageRecord& record);

}  // namespace starling::cluster
