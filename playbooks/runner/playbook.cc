// The playbook model's helpers (playbook.h) and the load-time check that every
// variable a playbook uses is defined somewhere. Pure. Parsing YAML is in
// playbook_parser.cc, templates in template.cc, `when` in condition.cc.
#include "playbooks/runner/playbook.h"

#include <utility>

namespace coord::playbooks {

std::string SourceLocation::ToString() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
  if (!path.empty()) out += ": " + path;
  return out;
}

const char* ActionKindName(ActionKind kind) {
  switch (kind) {
    case ActionKind::kShell:
      return "shell";
    case ActionKind::kCommand:
      return "command";
    case ActionKind::kCopy:
      return "copy";
  }
  return "?";
}

const std::vector<std::string>& FactNames() {
  static const std::vector<std::string> names = {
      "inventory_hostname", "os_family", "distribution", "distribution_version", "arch", "user_id",
      "has_systemd"};
  return names;
}

int Playbook::TaskCount() const {
  int n = 0;
  for (const Play& p : plays) n += static_cast<int>(p.tasks.size());
  return n;
}

// ---------------------------------------------------------------------------
// Validation

namespace {

Status CheckNames(const std::vector<std::string>& used, const std::set<std::string>& known,
                  const SourceLocation& where, const std::string& task_name) {
  for (const auto& name : used) {
    if (known.count(name)) continue;
    std::string who = task_name.empty() ? "" : " (task \"" + task_name + "\")";
    return InvalidArgument(
        where.ToString() + who + ": undefined variable \"" + name +
        "\"; define it under the play's vars:, in the vars file, or with --var " + name + "=...");
  }
  return Status::Ok();
}

}  // namespace

Status CheckVariablesDefined(const Playbook& playbook, const std::set<std::string>& defined) {
  for (const Play& play : playbook.plays) {
    std::set<std::string> known = defined;
    for (const auto& name : FactNames()) known.insert(name);
    for (const auto& kv : play.vars) known.insert(kv.first);
    for (const auto& [name, value] : play.vars) {
      ASSIGN_OR_RETURN(Template t, Template::Parse(value));
      RETURN_IF_ERROR(CheckNames(t.variables(), known, play.var_locations.at(name), ""));
    }
    for (const Task& task : play.tasks) {
      auto where = [&](const std::string& field) {
        auto it = task.fields.find(field);
        return it != task.fields.end() ? it->second : task.where;
      };
      std::vector<std::pair<std::string, const Template*>> templates = {
          {ActionKindName(task.action), &task.command}};
      if (task.action == ActionKind::kCopy) {
        templates = {{"copy.dest", &task.copy.dest},
                     {task.copy.has_src ? "copy.src" : "copy.content",
                      task.copy.has_src ? &task.copy.src : &task.copy.content}};
      }
      if (task.creates) templates.emplace_back("creates", &*task.creates);
      if (task.unless) templates.emplace_back("unless", &*task.unless);
      if (task.when)
        RETURN_IF_ERROR(CheckNames(task.when->variables(), known, where("when"), task.name));
      for (const auto& [field, t] : templates) {
        RETURN_IF_ERROR(CheckNames(t->variables(), known, where(field), task.name));
      }
    }
  }
  return Status::Ok();
}

}  // namespace coord::playbooks
