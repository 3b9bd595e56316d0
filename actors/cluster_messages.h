// The messages between the node actors of a cluster (actors/cluster.h): plain serializable
// values (an `inspect` each, registered with add_message_type on every node), never pointers
// or versions. Includes CAF: only actors/cluster.cpp and actors/runtime.cpp include it.
#pragma once

#include <caf/all.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "actors/cluster.h"

namespace tickdb {

// What a node tells its peers about itself, in every ping and at once when its tables change.
struct PeerHello {
  std::string cluster;            // cluster.name
  std::string node;               // node.name
  std::string http;               // its HTTP address:port
  std::string address;            // its cluster address:port
  std::uint64_t incarnation = 0;  // random per process: a restarted node has another one
  std::uint64_t epoch = 0;        // rises whenever its table list changes
  std::vector<std::string> tables;
  std::vector<std::string> peers;  // the cluster addresses it knows: every node joins all
};

// Forwarded calls sent together (those that queued up while the node actor was busy), and
// the answers that were ready together: one message on the link for many calls.
struct ForwardBatch {
  std::vector<std::uint64_t> calls;
  std::vector<ForwardRequest> requests;
};
struct ReplyBatch {
  std::vector<std::uint64_t> calls;
  std::vector<ForwardReply> replies;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, PeerHello& x) {
  return f(caf::meta::type_name("tickdb_hello"), x.cluster, x.node, x.http, x.address,
           x.incarnation, x.epoch, x.tables, x.peers);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ForwardRequest& x) {
  return f(caf::meta::type_name("tickdb_fwd_req"), x.method, x.target, x.body, x.authorization,
           x.headers, x.from);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ForwardReply& x) {
  return f(caf::meta::type_name("tickdb_fwd_rep"), x.status, x.body, x.content_type, x.headers);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ForwardBatch& x) {
  return f(caf::meta::type_name("tickdb_fwd_batch"), x.calls, x.requests);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ReplyBatch& x) {
  return f(caf::meta::type_name("tickdb_rep_batch"), x.calls, x.replies);
}

// Between nodes.
using hello_atom = caf::atom_constant<caf::atom("c_hello")>;  // PeerHello -> PeerHello
// (call id, piece, last piece?, ForwardReply): a forwarded answer, in pieces of at most 512 KiB
using fwd_reply_atom = caf::atom_constant<caf::atom("c_fwd_rep")>;
using fwd_batch_atom = caf::atom_constant<caf::atom("c_fwd_b")>;    // ForwardBatch
using reply_batch_atom = caf::atom_constant<caf::atom("c_rep_b")>;  // ReplyBatch
// Relayed streams (Cluster::open_stream), by the relaying node's stream id:
// owner -> relay: (id, piece, last piece?, text): a frame, in pieces of at most 512 KiB
using stream_frame_atom = caf::atom_constant<caf::atom("c_s_frame")>;
using stream_end_atom = caf::atom_constant<caf::atom("c_s_end")>;  // (id, code, reason)
// relay -> owner: (id, bytes) written to the client; (id): the client went away
using stream_ack_atom = caf::atom_constant<caf::atom("c_s_ack")>;
using stream_close_atom = caf::atom_constant<caf::atom("c_s_close")>;
// Inside one node.
using connect_try_atom = caf::atom_constant<caf::atom("c_try")>;  // (address): connect now
using ping_all_atom = caf::atom_constant<caf::atom("c_ping")>;    // every heartbeat
using announce_atom = caf::atom_constant<caf::atom("c_announce")>;

// Registers the cross-node types in an actor system's config (every node, before start).
inline void add_cluster_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<PeerHello>("tickdb_hello");
  cfg.add_message_type<ForwardRequest>("tickdb_fwd_req");
  cfg.add_message_type<ForwardReply>("tickdb_fwd_rep");
  cfg.add_message_type<ForwardBatch>("tickdb_fwd_batch");
  cfg.add_message_type<ReplyBatch>("tickdb_rep_batch");
}

}  // namespace tickdb
