// `{{ name }}` templates (template.h): split once into literal and variable
// pieces, so rendering per host is a walk over the pieces. Pure.
#include "playbooks/runner/template.h"
#include "common/strings.h"

#include <algorithm>
#include <cctype>

namespace coord::playbooks {


bool IsValidVarName(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

StatusOr<Template> Template::Parse(const std::string& text) {
  Template t;
  t.text_ = text;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find("{{", pos);
    if (open == std::string::npos) {
      t.pieces_.push_back({false, text.substr(pos)});
      break;
    }
    if (open > pos) t.pieces_.push_back({false, text.substr(pos, open - pos)});
    size_t close = text.find("}}", open + 2);
    if (close == std::string::npos) {
      return InvalidArgument("\"{{\" at character " + std::to_string(open + 1) +
                             " is not closed with \"}}\"");
    }
    std::string name = Trim(text.substr(open + 2, close - open - 2));
    if (!IsValidVarName(name)) {
      return InvalidArgument("expected a variable name between \"{{\" and \"}}\" at character " +
                             std::to_string(open + 1) + ", got \"" + name +
                             "\" (only plain names such as {{ cfs_mount }}: no filters or "
                             "expressions)");
    }
    t.pieces_.push_back({true, name});
    if (std::find(t.variables_.begin(), t.variables_.end(), name) == t.variables_.end()) {
      t.variables_.push_back(name);
    }
    pos = close + 2;
  }
  return t;
}

StatusOr<std::string> Template::Render(const VarLookup& lookup) const {
  std::string out;
  for (const Piece& p : pieces_) {
    if (!p.is_var) {
      out += p.text;
      continue;
    }
    ASSIGN_OR_RETURN(std::string value, lookup(p.text));
    out += value;
  }
  return out;
}

}  // namespace coord::playbooks
