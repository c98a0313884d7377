// Runs a playbook (playbook.h) on the inventory's hosts: a small pool of
// `forks` threads, each taking the next host in inventory order; per host:
// connect, gather facts (one command), then every task of every play in order.
// A host stops at its first failed task; the others go on, unless more than
// max_fail_percent of the hosts have failed, after which no host starts and
// running ones stop before their next task ("aborted").
//
// Per task: `when` -> skipped; creates/unless probes -> ok; else the action
// (changed; ok with changed_when: false). copy probes the remote sha256 and
// mode first and uploads only when they differ. Check mode runs the probes
// (read-only) and never the actions: "would change"; tasks with changed_when:
// false are checks that did not run there, so they report "skipped".
//
// Thread model: RunPlaybook blocks the caller; the Connector and the
// Reporter's TaskFinished are called from the pool's threads concurrently.
#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "playbooks/runner/playbook.h"
#include "playbooks/runner/remote_host.h"

namespace coord::playbooks {

class Reporter;  // report.h

struct InventoryHost {
  std::string name;     // as in the hosts file; the fact inventory_hostname
  std::string address;  // what the connector dials (empty: name)
  int ssh_port = 22;
  std::string ssh_user;  // empty: the connector's default
  Vars vars;             // host vars: above facts, below the play's vars
};

// Opens the session to one host. An error makes that host "unreachable".
using Connector = std::function<StatusOr<std::unique_ptr<RemoteHost>>(const InventoryHost&)>;

struct RunOptions {
  int forks = 8;               // hosts at a time, >= 1
  int max_fail_percent = 100;  // 0..100; abort once failed hosts exceed this share
  bool check = false;          // --check: probes only, nothing changes
  Vars vars;                   // --var k=v: highest precedence
  Vars vars_file;              // --vars-file: below --var, above play vars
  std::chrono::milliseconds facts_timeout{60000};
};

// ---------------------------------------------------------------------------
// Results

enum class TaskOutcome { kOk, kChanged, kWouldChange, kSkipped, kFailed, kUnreachable, kAborted };
constexpr int kTaskOutcomeCount = 7;
const char* TaskOutcomeName(TaskOutcome outcome);  // for people: "would change"
const char* TaskOutcomeKey(TaskOutcome outcome);   // for JSON: "would_change"

// Step names of the results that are not playbook tasks (index 0).
constexpr char kConnectStep[] = "connect";
constexpr char kFactsStep[] = "gather facts";
constexpr char kStartStep[] = "start";  // a host aborted before it started

struct TaskResult {
  std::string host;
  std::string task;  // the task's name, or one of the step names above
  int index = 0;     // 1-based among all the playbook's tasks; 0 for a step
  int total = 0;     // the playbook's task count
  TaskOutcome outcome = TaskOutcome::kOk;
  std::string message;  // why (probe result, failure with output tail), may be empty
  double seconds = 0;
};

struct HostResult {
  std::string host;
  std::vector<TaskResult> tasks;  // in the order they ran
  bool failed = false;            // a task or the fact gathering failed
  bool unreachable = false;       // no session, or it broke
  bool aborted = false;           // stopped by max_fail_percent
  Vars facts;                     // empty when facts were not gathered
  bool ok() const { return !failed && !unreachable && !aborted; }
};

struct OutcomeCounts {
  std::array<int, kTaskOutcomeCount> n{};
  int& operator[](TaskOutcome o) { return n[static_cast<size_t>(o)]; }
  int operator[](TaskOutcome o) const { return n[static_cast<size_t>(o)]; }
};
OutcomeCounts CountOutcomes(const HostResult& host);

struct PlaybookResult {
  std::string playbook;
  bool check = false;
  int max_fail_percent = 100;
  bool aborted_by_max_fail = false;
  double seconds = 0;
  std::vector<HostResult> hosts;  // inventory order
};

// False when any host failed, was unreachable or was aborted (exit status 1).
bool RunSucceeded(const PlaybookResult& result);

// Validates the options and the playbook's variables (CheckVariablesDefined),
// then runs; an error Status means nothing ran. `reporter` may be null.
StatusOr<PlaybookResult> RunPlaybook(const Playbook& playbook,
                                     const std::vector<InventoryHost>& inventory,
                                     const RunOptions& options, const Connector& connector,
                                     Reporter* reporter);

// ---------------------------------------------------------------------------
// Pieces, public for the tests and the SSH transport

// `s` as one /bin/sh word: single quotes, each ' written as '\''.
std::string ShellQuote(const std::string& s);
// `sudo -n /bin/sh -c '<command>'`: -n fails instead of prompting for a password.
std::string BecomeCommand(const std::string& command);

// The one command that gathers facts, and the parser of its output (every fact
// but inventory_hostname).
const std::string& FactsCommand();
StatusOr<Vars> ParseFacts(const std::string& output);
// Ansible's os_family from /etc/os-release's ID and ID_LIKE: Debian, RedHat,
// Suse, Arch, or "other".
std::string OsFamily(const std::string& id, const std::string& id_like);

// The lowercase hex SHA-256 of `data`.
std::string Sha256Hex(const std::string& data);

}  // namespace coord::playbooks
