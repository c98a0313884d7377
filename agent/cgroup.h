// cgroup v2 helpers: find the cgroup2 mount and our own cgroup, pick the agent's
// parent cgroup, create per-generation / per-rank cgroups, list, kill (cgroup.kill)
// and remove them. Used by coord-agent (setup, kill, verify) and coord-supervisor
// (create, per-rank kill, cleanup). Stateless free functions, thread-safe.
//
// Layout: <parent>/<job>.g<gen>/rank-<R>/ where <parent> defaults to
// <cgroup2 mount><our cgroup>/coord-<agenttag>.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace coord::agent {

// The mount point of the first cgroup2 line of /proc/self/mountinfo text; "" if none.
std::string ParseCgroup2Mount(const std::string& mountinfo);
// The "0::<path>" entry of /proc/self/cgroup text; "" if none.
std::string ParseOwnCgroup(const std::string& proc_self_cgroup);
// <mount><own>/coord-<agent_tag>, with no doubled slashes.
std::string DefaultCgroupParent(const std::string& mount, const std::string& own,
                                const std::string& agent_tag);

// Resolves --cgroup-parent: "none" -> "" (disabled); "" -> the default parent.
// Creates the parent and checks that we can create children in it. On failure
// returns the reason; the caller logs one warning and falls back to process
// groups + tag scans.
StatusOr<std::string> SetUpCgroupParent(const std::string& option, const std::string& agent_tag);

std::string GenCgroupDir(const std::string& parent, const std::string& job_id, int generation);
std::string RankCgroupDir(const std::string& gen_dir, int rank);

// mkdir of the generation cgroup and one child per rank.
Status CreateGenCgroup(const std::string& gen_dir, const std::vector<int>& ranks);
// Pids in `dir` and every cgroup below it (empty when it does not exist).
std::vector<int> CgroupProcs(const std::string& dir);
// "populated 1" in cgroup.events (any live process in the subtree).
bool CgroupPopulated(const std::string& dir);
// SIGKILLs everything in the subtree: cgroup.kill (Linux >= 5.14), else each pid.
Status CgroupKill(const std::string& dir);
// rmdir of the subtree, deepest first; false while something is still inside.
bool RemoveCgroupTree(const std::string& dir);

}  // namespace coord::agent
