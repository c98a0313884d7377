// Passing pre-launch checks remembered, so that a job started again on the same nodes
// with the same spec (a resubmit after a fix, a sweep of short runs) does not pay for
// the node and cluster checks each time. A result is reused only while it is younger
// than the reuse window and every node still runs the agent process that was checked
// (an agent restart, e.g. after a driver upgrade or a reboot, gets a new agent_id and
// so a fresh check). Results with a FAIL are never remembered. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/cluster_check.h"
#include "env_check/cluster.h"

namespace coord::coordinator {

class CheckMemo {
 public:
  // What the checks depend on: the nodes, the spec, the ranks' environment and workdir.
  static std::string Fingerprint(const ClusterCheckRequest& request);

  struct Hit {
    env_check::ClusterReport report;
    int64_t age_ms = 0;
  };
  // The report remembered for `fingerprint` if it passed at most max_age_ms before
  // now_mono on agents with exactly these ids (one per node; "" never matches).
  // Whether a result for `fingerprint` younger than max_age_ms is remembered (worth
  // asking the agents who they are).
  bool Has(const std::string& fingerprint, int64_t now_mono, int64_t max_age_ms);
  std::optional<Hit> Find(const std::string& fingerprint,
                          const std::vector<std::string>& agent_ids, int64_t now_mono,
                          int64_t max_age_ms);
  void Remember(const std::string& fingerprint, std::vector<std::string> agent_ids,
                int64_t now_mono, env_check::ClusterReport report);

 private:
  // Bounded: a coordd that starts jobs on ever new node sets forgets the oldest.
  static constexpr size_t kMaxEntries = 64;
  struct Entry {
    std::vector<std::string> agent_ids;
    int64_t passed_mono = 0;
    env_check::ClusterReport report;
  };
  // The entry for `fingerprint` if it passed at most max_age_ms before now_mono.
  const Entry* FreshLocked(const std::string& fingerprint, int64_t now_mono,
                           int64_t max_age_ms) const;
  std::mutex mu_;
  std::map<std::string, Entry> entries_;  // guarded by mu_
};

}  // namespace coord::coordinator
