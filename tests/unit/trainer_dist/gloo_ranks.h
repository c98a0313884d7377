// Multi-rank tests of gloo-based code: each rank a forked process with a real
// GlooCommunicator (gloo's TCP transport on 127.0.0.1, rendezvous through the TCP store
// rank 0 hosts on a free port).
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <vector>

#include "tests/support/ports.h"
#include "trainer/dist/gloo_communicator.h"
#include "trainer/dist/tcp_store.h"

namespace gpt_rank::dist {

// Runs body(rank, comm) in `size` forked processes, one rank each, as in a real
// job (several gloo devices in one process are not what gpt-rank runs, and gloo's
// connect is not reliable that way). Rank 0 hosts the TCP store on a free port.
// gtest failures inside a child are printed by the child and make it exit 1;
// the parent asserts that every rank exited 0. The parent has no threads, so
// forking is safe.
inline int FailedParts() {
  const ::testing::TestResult* result =
      ::testing::UnitTest::GetInstance()->current_test_info()->result();
  int failed = 0;
  for (int i = 0; i < result->total_part_count(); ++i) failed += result->GetTestPartResult(i).failed();
  return failed;
}

inline void RunRanks(int size, std::chrono::milliseconds timeout,
              const std::function<void(int, GlooCommunicator&)>& body) {
  const int port = coord::testing::UnusedTcpPort();
  std::vector<pid_t> pids;
  for (int r = 0; r < size; ++r) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // Failures recorded before the fork belong to the parent.
      const int parts_before = FailedParts();
      std::unique_ptr<TcpStoreServer> server;
      if (r == 0) {
        auto started = TcpStoreServer::Start("127.0.0.1", port);
        if (!started.ok()) {
          std::fprintf(stderr, "rank 0: %s\n", started.status().ToString().c_str());
          _exit(3);
        }
        server = std::move(*started);
      }
      auto store = TcpStore::Connect("127.0.0.1", port, std::chrono::milliseconds(10000));
      EXPECT_TRUE(store.ok()) << store.status().ToString();
      if (store.ok()) {
        GlooOptions o;
        o.hostname = "127.0.0.1";
        o.timeout = timeout;
        auto comm = GlooCommunicator::Create(**store, r, size, o);
        EXPECT_TRUE(comm.ok()) << "rank " << r << ": " << comm.status().ToString();
        if (comm.ok()) body(r, **comm);
      }
      std::fflush(stdout);
      _exit(FailedParts() > parts_before ? 1 : 0);
    }
    pids.push_back(pid);
  }
  for (int r = 0; r < size; ++r) {
    int status = 0;
    ASSERT_EQ(waitpid(pids[static_cast<size_t>(r)], &status, 0), pids[static_cast<size_t>(r)]);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "rank " << r << " of " << size << " failed (status " << status << ", output above)";
  }
}

}  // namespace gpt_rank::dist
