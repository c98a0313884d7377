#include "coordinator/cluster_check.h"

#include <algorithm>
#include <cstdio>
#include <random>
#include <set>

#include "common/clock.h"
#include "coordinator/job_manager_internal.h"
#include "env_check/check_proto.h"
#include "env_check/job_context.h"

namespace coord::coordinator {
namespace {

std::string RandomCheckId() {
  std::random_device rd;
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%08x%08x", rd(), rd());
  return buf;
}

// Slack on top of the node's own deadline for the RPC itself.
constexpr int kRpcSlackMs = 3000;

}  // namespace

std::string CheckNodeName(const HostEntry& host) { return host.Target(); }

StatusOr<env_check::ClusterReport> RunClusterCheck(const ClusterCheckRequest& request) {
  env_check::CheckContext ctx;
  if (!request.config_json.empty()) {
    ASSIGN_OR_RETURN(ctx, env_check::ContextFromJob(request.config_json, request.config_path));
  }
  const size_t n = request.hosts.size();
  env_check::ClusterReport report;
  report.nodes.resize(n);
  if (request.agent_ids != nullptr) request.agent_ids->assign(n, "");

  std::vector<std::string> peers;
  for (const HostEntry& h : request.hosts) {
    if (std::find(peers.begin(), peers.end(), h.host) == peers.end()) peers.push_back(h.host);
  }
  const bool tokens = !ctx.shared_path.empty();
  std::string token_dir;
  if (tokens) {
    std::string base = ctx.shared_path;
    while (base.size() > 1 && base.back() == '/') base.pop_back();
    token_dir = base + "/.coord-check/" + RandomCheckId();
  }
  auto token_path = [&](size_t i) { return token_dir + "/node-" + std::to_string(i); };
  auto token_content = [&](size_t i) {
    return "coord cluster check " + token_dir + " node " + std::to_string(i) + " " +
           CheckNodeName(request.hosts[i]) + "\n";
  };
  const int check_timeout_ms =
      static_cast<int>(env_check::RunDeadline(ctx).count() + ctx.probe_deadline.count()) +
      kRpcSlackMs;
  const int token_timeout_ms = static_cast<int>(ctx.probe_deadline.count()) + kRpcSlackMs;

  env_check::TokenExchange exchange;
  exchange.shared_path = ctx.shared_path;
  exchange.write_error.assign(n, "");
  exchange.read_error.assign(n, "");
  exchange.seen.assign(n, std::vector<bool>(n, false));

  // Round 1: reachability, clock, node table, token written.
  internal::ParallelFor(static_cast<int>(n), [&](int i) {
    env_check::NodeReport& node = report.nodes[static_cast<size_t>(i)];
    node.name = CheckNodeName(request.hosts[static_cast<size_t>(i)]);
    AgentClient* client = request.clients[static_cast<size_t>(i)];
    const int64_t sent = WallMs();
    StatusOr<agent::PingReply> ping = client->Ping(request.connect_timeout_ms);
    const int64_t received = WallMs();
    if (!ping.ok()) {
      node.reachable = false;
      node.error = ping.status().message() +
                   " (is coord-agent running there? `systemctl status coord-agent`)";
      return;
    }
    node.hostname = ping->hostname();
    if (request.agent_ids != nullptr) (*request.agent_ids)[static_cast<size_t>(i)] = ping->agent_id();
    if (ping->time_ms() > 0) {
      node.clock_offset_ms = ping->time_ms() - (sent + received) / 2;
      node.clock_uncertainty_ms = (received - sent + 1) / 2;
    }
    agent::CheckNodeRequest req;
    req.set_config_json(request.config_json);
    req.set_config_path(request.config_path);
    req.set_is_master_node(i == 0);
    for (const std::string& p : peers) req.add_peer_hosts(p);
    for (const auto& [k, v] : request.env) (*req.mutable_env())[k] = v;
    req.set_workdir(request.workdir);
    if (tokens) {
      req.set_token_path(token_path(static_cast<size_t>(i)));
      req.set_token_content(token_content(static_cast<size_t>(i)));
    }
    StatusOr<agent::CheckNodeReply> reply = client->CheckNode(req, check_timeout_ms);
    if (!reply.ok()) {
      node.reachable = false;
      node.error = "the node checks did not complete: " + reply.status().message();
      return;
    }
    for (const auto& r : reply->results()) node.results.push_back(env_check::FromProto(r));
    exchange.write_error[static_cast<size_t>(i)] = reply->token_error();
  });

  if (tokens) {
    // Round 2: every node reads every token; round 3: each removes its own.
    agent::SharedTokensRequest read;
    for (size_t j = 0; j < n; ++j) read.add_paths(token_path(j));
    read.set_deadline_ms(static_cast<int>(ctx.probe_deadline.count()));
    internal::ParallelFor(static_cast<int>(n), [&](int i) {
      const size_t me = static_cast<size_t>(i);
      if (!report.nodes[me].reachable || !exchange.write_error[me].empty()) return;
      StatusOr<agent::SharedTokensReply> got =
          request.clients[me]->SharedTokens(read, token_timeout_ms);
      if (!got.ok()) {
        exchange.read_error[me] = got.status().message();
        return;
      }
      for (int j = 0; j < got->tokens_size() && static_cast<size_t>(j) < n; ++j) {
        const agent::SharedToken& t = got->tokens(j);
        exchange.seen[me][static_cast<size_t>(j)] =
            t.ok() && t.content() == token_content(static_cast<size_t>(j));
      }
      // Its own token missing means the filesystem lost a write it acknowledged.
      if (!exchange.seen[me][me]) {
        exchange.read_error[me] =
            "its own token is gone" +
            (i < got->tokens_size() ? ": " + got->tokens(i).error() : std::string());
      }
    });
    internal::ParallelFor(static_cast<int>(n), [&](int i) {
      const size_t me = static_cast<size_t>(i);
      // A node that could not write (a hung mount) would only hang again here.
      if (!report.nodes[me].reachable || !exchange.write_error[me].empty()) return;
      agent::SharedTokensRequest remove;
      remove.add_paths(token_path(me));
      remove.set_remove(true);
      remove.set_deadline_ms(static_cast<int>(ctx.probe_deadline.count()));
      (void)request.clients[me]->SharedTokens(remove, token_timeout_ms);
    });
    env_check::AddSharedPathResults(exchange, &report.nodes);
  }
  report.cluster = env_check::CompareNodes(report.nodes);
  return report;
}

}  // namespace coord::coordinator
