// `{{ name }}` templates: the strings of a playbook that differ per host (shell,
// command, creates, unless, copy's src/content/dest, vars values). Split at
// parse time, rendered by the runner on each host through a VarLookup (a
// VarScope there; a plain map in tests). Also the variable vocabulary that
// templates share with `when` (condition.h) and the scope (var_scope.h).
//
// Only plain names: no filters, no attributes, no escape for a literal "{{".
// A lone "{" or "}" is text (shell's ${x} and { ...; } stay as written).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace coord::playbooks {

// Variables by name. Values may themselves be templates (vars:, --var, the
// vars file, host vars); facts never are.
using Vars = std::map<std::string, std::string>;

// Resolves a variable's final value (templates already expanded); NotFound
// names the variable when it is undefined.
using VarLookup = std::function<StatusOr<std::string>(const std::string& name)>;

// True for names a template may use: [A-Za-z_][A-Za-z0-9_]*.
bool IsValidVarName(const std::string& name);

// A string with `{{ name }}` references, split at parse time. Copyable;
// immutable once parsed.
class Template {
 public:
  Template() = default;
  // Errors are InvalidArgument with the 1-based character of the "{{" and no
  // file location (the caller prefixes it): an unclosed "{{", or anything but
  // a plain name between the braces.
  static StatusOr<Template> Parse(const std::string& text);
  // The first lookup error is returned as it is (it names the variable).
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

}  // namespace coord::playbooks
