// Fuzzes the agent's checks of what an RPC asks for (agent/agent_service.h): job ids,
// ranks, paths, argv and env of a LaunchRequest, TailLogs' selectors, SharedTokens'
// paths, ReservePort and Kill. The first byte picks the request; the rest is its
// serialized proto (protobuf's ParseFromArray, as gRPC decodes it). The service runs
// on a fake node (no process is started; every supervisor spawn fails) and a fake
// System (SharedTokens reads nothing real), in a scratch state dir.
#include "agent/agent_service.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/support/fake_clock.h"
#include "tests/unit/agent/fake_node.h"
#include "tests/unit/env_check/fake_system.h"

namespace agent = coord::agent;

namespace {

agent::AgentService& Service() {
  static agent::AgentService* service = [] {
    auto clock = std::make_shared<coord::FakeClock>();
    static auto node = std::make_shared<agent::FakeNode>(clock);
    agent::FakeNode::Script script;
    script.spawn_fails = true;
    node->SetScript(script);
    agent::AgentServiceOptions o;
    o.state_dir = coord::fuzz::ScratchDir() + "/state";
    std::filesystem::create_directories(o.state_dir);
    o.supervisor_path = "/nonexistent/coord-supervisor";  // the fake node never runs it
    o.clock = clock;
    o.processes = node->processes();
    o.make_watcher = node->watcher_factory();
    o.system = std::make_shared<coord::env_check::testing::FakeSystem>();
    auto s = agent::AgentService::Create(o);
    if (!s.ok()) abort();
    return s->release();  // lives as long as the process
  }();
  return *service;
}

template <typename Request>
bool Decode(const uint8_t* data, size_t size, Request* req) {
  return req->ParseFromArray(data, static_cast<int>(size));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  agent::AgentService& service = Service();
  const uint8_t kind = data[0] % 5;
  ++data;
  --size;
  switch (kind) {
    case 0: {
      agent::LaunchRequest req;
      agent::LaunchReply reply;
      if (Decode(data, size, &req)) (void)service.Launch(req, &reply);
      break;
    }
    case 1: {
      agent::TailLogsRequest req;
      if (Decode(data, size, &req)) {
        (void)service.TailLogs(
            req, [](const agent::LogBatch&) { return true; }, [] { return true; });
      }
      break;
    }
    case 2: {
      agent::SharedTokensRequest req;
      agent::SharedTokensReply reply;
      if (Decode(data, size, &req)) (void)service.SharedTokens(req, &reply);
      break;
    }
    case 3: {
      agent::ReservePortRequest req;
      agent::ReservePortReply reply;
      if (Decode(data, size, &req)) (void)service.ReservePort(req, &reply);
      break;
    }
    case 4: {
      agent::KillRequest req;
      agent::KillReply reply;
      if (Decode(data, size, &req)) (void)service.Kill(req, &reply);
      break;
    }
  }
  return 0;
}
