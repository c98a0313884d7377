// The playbook model and its parser: the YAML files `coordctl provision` runs on
// many hosts (runner.h runs them). Ansible's shape, so people read them at once,
// but a deliberately small subset: what is not listed below is an error, never
// silently ignored. Parsing is pure (text in, model out); the runner renders the
// templates per host, because facts differ per host.
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
//         when: os_family == "RedHat"   # optional condition (grammar below)
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
// Templates: `{{ name }}` in shell, command, creates, unless, copy's src, content
// and dest, and in vars values. Only plain names (no filters, no attributes, no
// escape for a literal "{{"). Variables, highest precedence first: --var k=v, the
// vars file, the play's vars:, the inventory host's vars, facts (runner.h lists
// them). A name defined nowhere is an error at validation time
// (CheckVariablesDefined); a value that cannot be produced on a host is an error
// of that task.
//
// `when` grammar (parsed at load time; errors give the character position):
//   expr    := and_expr { "or" and_expr }
//   and_expr:= not_expr { "and" not_expr }
//   not_expr:= "not" not_expr | primary
//   primary := "(" expr ")" | NAME [ ("==" | "!=") STRING ]
// STRING is "double" or 'single' quoted (backslash escapes the quote). NAME may
// also be written {{ NAME }} (Ansible tolerates it). A bare NAME is true unless
// its value is empty, "false", "0" or "no" (any case).
//
// Multiple plays run one after another on each host; hosts do not wait for
// each other between plays (unlike Ansible's linear strategy).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace coord::playbooks {

using Vars = std::map<std::string, std::string>;

// Resolves a variable's final value (templates already expanded); NotFound
// names the variable when it is undefined.
using VarLookup = std::function<StatusOr<std::string>(const std::string& name)>;

// Where something is in a YAML file (1-based), and its path in the document
// ("[0].tasks[3].copy.mode"); both lead every error message.
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;
  std::string path;
  // "agent.yaml:12:7: [0].tasks[3].copy.mode"
  std::string ToString() const;
};

// ---------------------------------------------------------------------------
// Templates and conditions

// A string with `{{ name }}` references, split at parse time.
class Template {
 public:
  Template() = default;
  // Errors (no location; the caller prefixes it): an unclosed "{{", or
  // anything but a plain name between the braces.
  static StatusOr<Template> Parse(const std::string& text);
  StatusOr<std::string> Render(const VarLookup& lookup) const;
  const std::string& text() const { return text_; }
  // The referenced names, in order of first use.
  const std::vector<std::string>& variables() const { return variables_; }

 private:
  struct Piece {
    bool is_var = false;
    std::string text;  // literal text, or the variable name
  };
  std::string text_;
  std::vector<Piece> pieces_;
  std::vector<std::string> variables_;
};

// A `when:` expression (grammar in the file header). Copyable; immutable.
class Condition {
 public:
  struct Node;
  static StatusOr<Condition> Parse(const std::string& text);
  // Short-circuits like Jinja: the right side of a decided and/or is not
  // looked up.
  StatusOr<bool> Evaluate(const VarLookup& lookup) const;
  const std::string& text() const { return text_; }
  const std::vector<std::string>& variables() const { return variables_; }

 private:
  std::string text_;
  std::shared_ptr<const Node> root_;
  std::vector<std::string> variables_;
};

// The truthiness of a bare variable in `when`.
bool IsTruthy(const std::string& value);

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
// Loading

// `file` is used in messages and (its directory) as base_dir. Errors are
// InvalidArgument: "file:line:col: path: what was expected, got what; hint".
StatusOr<Playbook> ParsePlaybook(const std::string& text, const std::string& file);
StatusOr<Playbook> LoadPlaybook(const std::string& file);

// A vars file: one YAML map of names to scalars.
StatusOr<Vars> ParseVarsFile(const std::string& text, const std::string& file);
StatusOr<Vars> LoadVarsFile(const std::string& file);

// One `--var name=value` (the value may be empty and may contain '=').
Status ParseVarAssignment(const std::string& arg, Vars* vars);

// True for names a template may use: [A-Za-z_][A-Za-z0-9_]*.
bool IsValidVarName(const std::string& name);

// The fact names every host defines (values are gathered by the runner).
const std::vector<std::string>& FactNames();

// Every variable used anywhere (tasks, conditions, play vars) must be in
// `defined` (command line, vars file, host vars), the play's vars or the fact
// names. The error names the location, the task and the variable.
Status CheckVariablesDefined(const Playbook& playbook, const std::set<std::string>& defined);

// ---------------------------------------------------------------------------
// Variable scope

// Layers of variables, highest precedence first, for one host and play.
// Values of templated layers are expanded when looked up (recursively, with
// loops reported). Holds pointers: the maps must outlive the scope.
class VarScope {
 public:
  void AddLayer(const Vars* vars, bool templated);
  StatusOr<std::string> Lookup(const std::string& name) const;
  VarLookup AsLookup() const;

 private:
  StatusOr<std::string> Resolve(const std::string& name, std::vector<std::string>* stack) const;
  struct Layer {
    const Vars* vars;
    bool templated;
  };
  std::vector<Layer> layers_;
};

}  // namespace coord::playbooks
