// Generation kill (see kill.h). Runs in coord-agent.
#include "agent/kill.h"

#include <signal.h>
#include <unistd.h>

#include <set>
#include <thread>

#include "agent/cgroup.h"
#include "agent/proc_scan.h"
#include "common/clock.h"

namespace coord::agent {
namespace {

constexpr int kPollMs = 5;

std::set<int> LivePgrps(const std::vector<KillTarget>& targets) {
  std::set<int> pgrps;
  for (const auto& t : targets) {
    for (const auto& m : t.rank_mains) {
      // Only a rank that is verifiably alive: its pid is then its process group
      // id (it called setsid), never a recycled number.
      if (ProcAlive(m.pid, m.start_ticks)) pgrps.insert(m.pid);
    }
  }
  return pgrps;
}

// Cheap "anything left?" for the wait loop: with cgroups, cgroup.events is one
// read per generation; without, a full /proc scan.
bool AnyAlive(const std::vector<KillTarget>& targets) {
  bool all_cgroups = true;
  for (const auto& t : targets) {
    if (t.cgroup_dir.empty()) {
      all_cgroups = false;
    } else if (CgroupPopulated(t.cgroup_dir)) {
      return true;
    }
  }
  if (all_cgroups) return !LivePgrps(targets).empty();
  return !CollectProcesses(targets).empty();
}

void SignalAll(const std::vector<KillTarget>& targets, const std::vector<int>& pids, int sig) {
  for (const auto& t : targets) {
    if (sig == SIGKILL && !t.cgroup_dir.empty()) (void)CgroupKill(t.cgroup_dir);
  }
  for (int pgrp : LivePgrps(targets)) kill(-pgrp, sig);
  for (int pid : pids) kill(pid, sig);
}

}  // namespace

std::vector<int> CollectProcesses(const std::vector<KillTarget>& targets) {
  std::set<int> out;
  for (const auto& t : targets) {
    if (t.cgroup_dir.empty()) continue;
    for (int pid : CgroupProcs(t.cgroup_dir)) {
      if (ProcStartTicks(pid) != 0) out.insert(pid);
    }
  }
  std::set<int> pgrps = LivePgrps(targets);
  for (int pid : FindInPgrps(pgrps)) out.insert(pid);
  for (const auto& t : targets) {
    for (const auto& p : FindTagged(t.tag, /*exact=*/true)) out.insert(p.pid);
  }
  return std::vector<int>(out.begin(), out.end());
}

// SIGTERM to everything of the job that is known without a /proc scan: the
// rank process groups and the members of each generation's cgroup. A full scan
// costs tens of ms on a busy node, so it only runs for generations without a
// cgroup, and after the cheap signals have gone out.
void TerminateAll(const std::vector<KillTarget>& targets) {
  for (int pgrp : LivePgrps(targets)) kill(-pgrp, SIGTERM);
  for (const auto& t : targets) {
    if (!t.cgroup_dir.empty()) {
      for (int pid : CgroupProcs(t.cgroup_dir)) kill(pid, SIGTERM);
    } else {
      for (const auto& p : FindTagged(t.tag, /*exact=*/true)) kill(p.pid, SIGTERM);
    }
  }
}

KillOutcome KillGenerations(const std::vector<KillTarget>& targets, int grace_ms, int verify_ms) {
  KillOutcome out;
  for (const auto& t : targets) {
    for (const auto& m : t.rank_mains) out.ranks_signalled += ProcAlive(m.pid, m.start_ticks);
  }
  if (grace_ms > 0) {
    // Everything of the job gets SIGTERM, not only the rank mains: daemonized
    // helpers that honour it are then gone without waiting out the grace.
    TerminateAll(targets);
    int64_t deadline = MonoMs() + grace_ms;
    while (MonoMs() < deadline && AnyAlive(targets)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
    }
  }
  // Only what outlived the grace period needs the full collection; in the usual
  // case (ranks honour SIGTERM) the verification scan below is the only scan.
  if (grace_ms <= 0 || AnyAlive(targets)) {
    out.killed = CollectProcesses(targets);
    out.sigkilled = static_cast<int>(out.killed.size());
    SignalAll(targets, out.killed, SIGKILL);
  }
  // SIGKILL is asynchronous (a process in D state dies when it leaves the
  // kernel), so verify, re-killing anything that is still or newly there.
  int64_t deadline = MonoMs() + verify_ms;
  for (;;) {
    out.survivors = CollectProcesses(targets);
    if (out.survivors.empty() || MonoMs() >= deadline) break;
    SignalAll(targets, out.survivors, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
  }
  return out;
}

}  // namespace coord::agent
