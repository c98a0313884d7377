// The `when:` expression language of a playbook task: parsed once at load time
// (errors give the character position; the YAML parser prefixes file:line),
// evaluated on each host against its variables. Works on strings and a
// VarLookup only; it knows nothing of YAML.
//
// Grammar:
//   expr    := and_expr { "or" and_expr }
//   and_expr:= not_expr { "and" not_expr }
//   not_expr:= "not" not_expr | primary
//   primary := "(" expr ")" | NAME [ ("==" | "!=") STRING ]
// STRING is "double" or 'single' quoted (backslash escapes the quote). NAME may
// also be written {{ NAME }} (Ansible tolerates it). A bare NAME is true unless
// its value is empty, "false", "0" or "no" (any case): IsTruthy.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "playbooks/runner/template.h"

namespace coord::playbooks {

// A `when:` expression. Copyable (the tree is shared); immutable.
class Condition {
 public:
  struct Node;
  // Errors are InvalidArgument: "at character N: expected ..., got ...".
  static StatusOr<Condition> Parse(const std::string& text);
  // Short-circuits like Jinja: the right side of a decided and/or is not
  // looked up. A lookup error is returned as it is.
  StatusOr<bool> Evaluate(const VarLookup& lookup) const;
  const std::string& text() const { return text_; }
  // The referenced names, in order of first use.
  const std::vector<std::string>& variables() const { return variables_; }

 private:
  std::string text_;
  std::shared_ptr<const Node> root_;  // null only in a default-constructed Condition
  std::vector<std::string> variables_;
};

// The truthiness of a bare variable in `when`.
bool IsTruthy(const std::string& value);

}  // namespace coord::playbooks
