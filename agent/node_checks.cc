// CheckNode and SharedTokens: the agent's half of `coordctl check` and of the
// checks before `coordctl start`. The node table runs here, on the node, with the
// agent's environment (the one its ranks inherit) plus the job's launch.env.
#include <chrono>
#include <future>

#include "agent/agent_service.h"
#include "common/clock.h"
#include "env_check/check_proto.h"
#include "env_check/job_context.h"

namespace coord::agent {
namespace {

// Tokens live in "<shared path>/.coord-check/<check id>/<node>": the agent reads and
// removes only there, so these RPCs cannot touch anything else on the node.
Status ValidateTokenPath(const std::string& path) {
  if (path.empty() || path[0] != '/' || path.find("/.coord-check/") == std::string::npos ||
      path.find("/../") != std::string::npos || path.find("/./") != std::string::npos ||
      path.back() == '/')
    return InvalidArgument("not a cluster-check token path: '" + path +
                           "' (expected <shared path>/.coord-check/<id>/<node>)");
  return Status::Ok();
}

}  // namespace

Status AgentService::CheckNode(const CheckNodeRequest& req, CheckNodeReply* reply) {
  env_check::CheckContext ctx;
  if (!req.config_json().empty()) {
    ASSIGN_OR_RETURN(ctx, env_check::ContextFromJob(req.config_json(), req.config_path().empty()
                                                                           ? "job spec"
                                                                           : req.config_path()));
  }
  ctx.is_master_node = req.is_master_node();
  ctx.peer_hosts.assign(req.peer_hosts().begin(), req.peer_hosts().end());
  auto path = req.env().find("PATH");
  if (path != req.env().end()) ctx.program_search_path = path->second;
  ctx.workdir = req.workdir();
  // The token is written alongside the checks (a hung mount then costs one probe
  // deadline, not two); the other nodes read it only after every CheckNode returned.
  std::future<Status> wrote;
  if (!req.token_path().empty()) {
    RETURN_IF_ERROR(ValidateTokenPath(req.token_path()));
    wrote = std::async(std::launch::async, [this, &req, deadline = ctx.probe_deadline] {
      return system_->WriteSmallFile(req.token_path(), req.token_content(), deadline);
    });
  }
  reply->set_hostname(hostname_);
  for (const env_check::CheckResult& r : env_check::RunAll(ctx, system_))
    *reply->add_results() = env_check::ToProto(r);
  if (wrote.valid()) {
    Status st = wrote.get();
    if (!st.ok()) reply->set_token_error(st.message());
  }
  return Status::Ok();
}

Status AgentService::SharedTokens(const SharedTokensRequest& req, SharedTokensReply* reply) {
  for (const std::string& p : req.paths()) RETURN_IF_ERROR(ValidateTokenPath(p));
  const std::chrono::milliseconds deadline(req.deadline_ms() > 0 ? req.deadline_ms() : 5000);
  const std::vector<std::string> paths(req.paths().begin(), req.paths().end());
  if (req.remove()) {
    for (const std::string& p : paths) {
      SharedToken* t = reply->add_tokens();
      t->set_path(p);
      Status st = system_->RemoveSmallFile(p, deadline);
      t->set_ok(st.ok());
      t->set_error(st.ok() ? "" : st.message());
    }
    return Status::Ok();
  }
  auto contents = system_->ReadSmallFiles(paths, deadline);
  for (size_t i = 0; i < paths.size(); ++i) {
    SharedToken* t = reply->add_tokens();
    t->set_path(paths[i]);
    const Status& st = contents.ok() ? (*contents)[i].status() : contents.status();
    t->set_ok(st.ok());
    if (st.ok())
      t->set_content(*(*contents)[i]);
    else
      t->set_error(st.message());
  }
  return Status::Ok();
}

}  // namespace coord::agent
