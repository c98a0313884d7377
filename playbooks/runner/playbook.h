// The playbook model: the YAML files `coordctl provision` runs on many hosts,
// as playbook_parser.h loads them and runner.h runs them. Ansible's shape, so
// people read them at once, but a deliberately small subset: what is not listed
// below is an error, never silently ignored. The model keeps templates and
// conditions parsed but not rendered; the runner renders them per host, because
// facts differ per host. Also the load-time check of undefined variables.
//
// The format:
//
//   # A playbook is a list of plays (Ansible's shape); most have one.
//   - name: Prepare an HCC node         # optional
//     hosts: all                        # required; only "all" (the whole inventory)
//     become: true                      # default for the tasks (default false): run as root
//                                       # via `sudo -n` when the SSH user is not root
//     vars:                             # optional map of scalars; values may use {{ }}
//       cfs_mount: /mnt/cfs
//     tasks:
//       - name: Install NFS client      # optional (default: the action and its first words)
//         shell: yum install -y nfs-utils   # exactly one action: shell, command or copy
//         when: os_family == "RedHat"   # optional condition (condition.h)
//         creates: /sbin/mount.nfs      # skip (ok) when this path exists on the host
//       - name: Mount the CFS export
//         shell: mount -t nfs {{ cfs_export }} {{ cfs_mount }}
//         unless: mountpoint -q {{ cfs_mount }}   # skip (ok) when this probe exits 0
//         timeout_s: 120                # deadline of the whole task; default 300
//       - name: Check the driver
//         command: nvidia-smi -L        # command: is shell: (both run /bin/sh -c)
//         changed_when: false           # a check: reports ok, never changed
//       - name: Upload the agent
//         copy: {src: "{{ agent_binary }}", dest: /usr/local/bin/coord-agent, mode: "0755"}
//         become: true                  # per-task override of the play's become
//
// Task keys: name, shell | command | copy, when, creates, unless, changed_when
// (true/false only), become, timeout_s (1..86400). copy keys: dest (absolute),
// exactly one of src (a file on the controller; relative paths are relative to
// the playbook's directory) or content (text), and mode (octal such as "0755";
// default "0644"). Owner and group are not managed: root with become, else the user.
//
// Templates (template.h): `{{ name }}` in shell, command, creates, unless,
// copy's src, content and dest, and in vars values; plain names only.
// Variables, highest precedence first (var_scope.h): --var k=v, the vars file,
// the play's vars:, the inventory host's vars, facts (runner.h lists them). A
// name defined nowhere is an error at validation time (CheckVariablesDefined);
// a value that cannot be produced on a host is an error of that task.
//
// `when` (condition.h): names, quoted strings, ==, !=, and, or, not and
// parentheses; parsed at load time.
//
// Multiple plays run one after another on each host; hosts do not wait for
// each other between plays (unlike Ansible's linear strategy).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "playbooks/runner/condition.h"
#include "playbooks/runner/template.h"

namespace coord::playbooks {

// Where something is in a YAML file (1-based), and its path in the document
// ("[0].tasks[3].copy.mode"); both lead every error message.
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;
  std::string path;
  // "agent.yaml:12:7: [0].tasks[3].copy.mode"; line 0 leaves out ":line:col".
  std::string ToString() const;
};

// ---------------------------------------------------------------------------
// The model

enum class ActionKind { kShell, kCommand, kCopy };
const char* ActionKindName(ActionKind kind);  // "shell", "command", "copy"

struct CopySpec {
  bool has_src = false;  // src (a local file) or content
  Template src;
  Template content;
  Template dest;
  int mode = 0644;
};

struct Task {
  std::string name;
  SourceLocation where;                          // the task's map; path "[0].tasks[3]"
  std::map<std::string, SourceLocation> fields;  // "shell", "when", "copy.src", ...
  ActionKind action = ActionKind::kShell;
  Template command;  // shell / command
  CopySpec copy;
  std::optional<Condition> when;
  std::optional<Template> creates;
  std::optional<Template> unless;
  std::optional<bool> become;  // unset: the play's
  bool changed_when = true;    // false: a check that never reports changed
  int timeout_s = 300;
};

struct Play {
  std::string name;
  SourceLocation where;
  bool become = false;
  Vars vars;
  std::map<std::string, SourceLocation> var_locations;
  std::vector<Task> tasks;
};

struct Playbook {
  std::string file;      // as given, for messages
  std::string base_dir;  // copy's relative src paths are resolved here
  std::vector<Play> plays;
  int TaskCount() const;
};

constexpr int kDefaultTaskTimeoutS = 300;
constexpr int kMaxTaskTimeoutS = 86400;

// ---------------------------------------------------------------------------
// Validation

// The fact names every host defines (values are gathered by the runner).
const std::vector<std::string>& FactNames();

// Every variable used anywhere (tasks, conditions, play vars) must be in
// `defined` (command line, vars file, host vars), the play's vars or the fact
// names. The error names the location, the task and the variable.
Status CheckVariablesDefined(const Playbook& playbook, const std::set<std::string>& defined);

}  // namespace coord::playbooks
