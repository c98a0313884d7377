// The playbook parser (format in playbook.h): yaml-cpp builds the node tree,
// this file walks it with the document path in hand so every error says where
// it is and what to write instead. Also the {{ }} templates, the `when`
// expression language and the layered variable scope. Pure; no I/O but Load*.
#include "playbooks/runner/playbook.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>

#include "common/fs.h"

namespace coord::playbooks {

std::string SourceLocation::ToString() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
  if (!path.empty()) out += ": " + path;
  return out;
}

bool IsValidVarName(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

static std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool IsTruthy(const std::string& value) {
  std::string v = Lower(value);
  return !(v.empty() || v == "false" || v == "0" || v == "no");
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
// Templates

static std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
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

// ---------------------------------------------------------------------------
// `when` conditions: tokenizer, recursive descent parser, evaluator

struct Condition::Node {
  enum Kind { kVar, kEq, kNe, kNot, kAnd, kOr } kind = kVar;
  std::string name;                         // kVar, kEq, kNe
  std::string literal;                      // kEq, kNe
  std::shared_ptr<const Node> left, right;  // kNot uses left
};

namespace {

struct Token {
  enum Kind { kName, kString, kEq, kNe, kLParen, kRParen, kAnd, kOr, kNot, kEnd } kind;
  std::string text;
  size_t pos;  // 1-based character, for messages
};

std::string Describe(const Token& t) {
  if (t.kind == Token::kEnd) return "the end of the expression";
  if (t.kind == Token::kString) return "the string \"" + t.text + "\"";
  return "\"" + t.text + "\"";
}

Status ErrorAt(size_t pos, const std::string& what) {
  return InvalidArgument("at character " + std::to_string(pos) + ": " + what);
}

StatusOr<std::vector<Token>> Tokenize(const std::string& s) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    size_t pos = i + 1;
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (c == '(' || c == ')') {
      out.push_back({c == '(' ? Token::kLParen : Token::kRParen, std::string(1, c), pos});
      ++i;
    } else if ((c == '=' || c == '!') && i + 1 < s.size() && s[i + 1] == '=') {
      out.push_back({c == '=' ? Token::kEq : Token::kNe, s.substr(i, 2), pos});
      i += 2;
    } else if (c == '=') {
      return ErrorAt(pos, "\"=\" is not an operator; compare with \"==\" or \"!=\"");
    } else if (c == '{' && i + 1 < s.size() && s[i + 1] == '{') {
      // Ansible tolerates `when: "{{ flag }}"`; it means the bare name.
      size_t close = s.find("}}", i + 2);
      std::string name = close == std::string::npos ? "" : Trim(s.substr(i + 2, close - i - 2));
      if (!IsValidVarName(name)) {
        return ErrorAt(pos,
                       "expected {{ name }} with a plain variable name; in `when` the bare "
                       "name is enough, e.g. os_family == \"RedHat\"");
      }
      out.push_back({Token::kName, name, pos});
      i = close + 2;
    } else if (c == '"' || c == '\'') {
      std::string lit;
      size_t j = i + 1;
      for (; j < s.size() && s[j] != c; ++j) {
        if (s[j] == '\\' && j + 1 < s.size()) ++j;
        lit += s[j];
      }
      if (j >= s.size()) return ErrorAt(pos, std::string("the string is not closed with ") + c);
      out.push_back({Token::kString, lit, pos});
      i = j + 1;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      std::string word = s.substr(i, j - i);
      Token::Kind kind = word == "and"   ? Token::kAnd
                         : word == "or"  ? Token::kOr
                         : word == "not" ? Token::kNot
                                         : Token::kName;
      out.push_back({kind, word, pos});
      i = j;
    } else {
      return ErrorAt(pos, std::string("unexpected \"") + c +
                              "\"; `when` knows only names, quoted strings, ==, !=, and, or, "
                              "not and parentheses");
    }
  }
  out.push_back({Token::kEnd, "", s.size() + 1});
  return out;
}

class ConditionParser {
 public:
  using NodePtr = std::shared_ptr<const Condition::Node>;
  explicit ConditionParser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  StatusOr<NodePtr> ParseAll(std::vector<std::string>* variables) {
    variables_ = variables;
    ASSIGN_OR_RETURN(NodePtr root, ParseOr());
    if (Peek().kind != Token::kEnd) {
      return ErrorAt(Peek().pos, "expected \"and\", \"or\", \"==\", \"!=\" or the end, got " +
                                     Describe(Peek()));
    }
    return root;
  }

 private:
  const Token& Peek() const { return tokens_[next_]; }
  const Token& Take() { return tokens_[next_++]; }

  static NodePtr Binary(Condition::Node::Kind kind, NodePtr l, NodePtr r) {
    auto n = std::make_shared<Condition::Node>();
    n->kind = kind;
    n->left = std::move(l);
    n->right = std::move(r);
    return n;
  }

  StatusOr<NodePtr> ParseOr() {
    ASSIGN_OR_RETURN(NodePtr left, ParseAnd());
    while (Peek().kind == Token::kOr) {
      Take();
      ASSIGN_OR_RETURN(NodePtr right, ParseAnd());
      left = Binary(Condition::Node::kOr, left, right);
    }
    return left;
  }

  StatusOr<NodePtr> ParseAnd() {
    ASSIGN_OR_RETURN(NodePtr left, ParseNot());
    while (Peek().kind == Token::kAnd) {
      Take();
      ASSIGN_OR_RETURN(NodePtr right, ParseNot());
      left = Binary(Condition::Node::kAnd, left, right);
    }
    return left;
  }

  StatusOr<NodePtr> ParseNot() {
    if (Peek().kind != Token::kNot) return ParsePrimary();
    Take();
    ASSIGN_OR_RETURN(NodePtr operand, ParseNot());
    return Binary(Condition::Node::kNot, operand, nullptr);
  }

  StatusOr<NodePtr> ParsePrimary() {
    const Token& t = Take();
    if (t.kind == Token::kLParen) {
      ASSIGN_OR_RETURN(NodePtr inner, ParseOr());
      if (Peek().kind != Token::kRParen) {
        return ErrorAt(Peek().pos, "expected \")\" to close the \"(\" at character " +
                                       std::to_string(t.pos) + ", got " + Describe(Peek()));
      }
      Take();
      return inner;
    }
    if (t.kind != Token::kName) {
      return ErrorAt(t.pos, "expected a variable name, \"not\" or \"(\", got " + Describe(t));
    }
    auto n = std::make_shared<Condition::Node>();
    n->name = t.text;
    if (std::find(variables_->begin(), variables_->end(), t.text) == variables_->end()) {
      variables_->push_back(t.text);
    }
    if (Peek().kind != Token::kEq && Peek().kind != Token::kNe) return NodePtr(n);
    const Token& op = Take();
    n->kind = op.kind == Token::kEq ? Condition::Node::kEq : Condition::Node::kNe;
    const Token& rhs = Take();
    if (rhs.kind != Token::kString) {
      std::string hint = rhs.kind == Token::kName ? " (quote it: \"" + rhs.text + "\")" : "";
      return ErrorAt(rhs.pos, "expected a quoted string after \"" + op.text + "\", got " +
                                  Describe(rhs) + hint);
    }
    n->literal = rhs.text;
    return NodePtr(n);
  }

  std::vector<Token> tokens_;
  size_t next_ = 0;
  std::vector<std::string>* variables_ = nullptr;
};

StatusOr<bool> EvaluateNode(const Condition::Node& n, const VarLookup& lookup) {
  switch (n.kind) {
    case Condition::Node::kVar: {
      ASSIGN_OR_RETURN(std::string v, lookup(n.name));
      return IsTruthy(v);
    }
    case Condition::Node::kEq:
    case Condition::Node::kNe: {
      ASSIGN_OR_RETURN(std::string v, lookup(n.name));
      return (v == n.literal) == (n.kind == Condition::Node::kEq);
    }
    case Condition::Node::kNot: {
      ASSIGN_OR_RETURN(bool v, EvaluateNode(*n.left, lookup));
      return !v;
    }
    case Condition::Node::kAnd:
    case Condition::Node::kOr: {
      ASSIGN_OR_RETURN(bool l, EvaluateNode(*n.left, lookup));
      // The decided case skips the right side, as Jinja does.
      if (l == (n.kind == Condition::Node::kOr)) return l;
      return EvaluateNode(*n.right, lookup);
    }
  }
  return Internal("bad condition node");
}

}  // namespace

StatusOr<Condition> Condition::Parse(const std::string& text) {
  if (Trim(text).empty())
    return InvalidArgument("empty condition; expected e.g. os_family == \"Debian\"");
  ASSIGN_OR_RETURN(std::vector<Token> tokens, Tokenize(text));
  Condition c;
  c.text_ = text;
  ConditionParser parser(std::move(tokens));
  ASSIGN_OR_RETURN(c.root_, parser.ParseAll(&c.variables_));
  return c;
}

StatusOr<bool> Condition::Evaluate(const VarLookup& lookup) const {
  if (!root_) return Internal("evaluating an unparsed condition");
  return EvaluateNode(*root_, lookup);
}

// ---------------------------------------------------------------------------
// YAML walking helpers

namespace {

const char* KindName(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a scalar";
    default:
      return "nothing";
  }
}

// "\"rwx\"" for a scalar, else "a map", "a list", "nothing": the "got" of a message.
std::string Got(const YAML::Node& n) {
  return n.IsScalar() ? "\"" + n.Scalar() + "\"" : std::string(KindName(n));
}

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string JoinKeys(const std::vector<std::string>& keys) {
  std::string out;
  for (const auto& k : keys) out += (out.empty() ? "" : ", ") + k;
  return out;
}

// Walks one YAML document; remembers the file for every message.
class Walker {
 public:
  explicit Walker(std::string file) : file_(std::move(file)) {}

  SourceLocation Where(const YAML::Node& n, const std::string& path) const {
    SourceLocation loc{file_, 0, 0, path};
    YAML::Mark m = n.Mark();
    // yaml-cpp marks an empty value ("shell:") where the next token starts,
    // often lines later; its key is where people look.
    auto key = key_marks_.find(path);
    if (key != key_marks_.end() && (m.is_null() || n.IsNull())) m = key->second;
    if (!m.is_null()) {
      loc.line = m.line + 1;
      loc.column = m.column + 1;
    }
    return loc;
  }

  Status Error(const YAML::Node& n, const std::string& path, const std::string& what) const {
    return InvalidArgument(Where(n, path).ToString() + ": " + what);
  }

  // The map's entries in file order, keys checked against `allowed` (unknown
  // and duplicate keys are errors: a typo must not be silently ignored).
  StatusOr<std::vector<std::pair<std::string, YAML::Node>>> Entries(
      const YAML::Node& map, const std::string& path, const std::string& what,
      const std::vector<std::string>& allowed) const {
    if (!map.IsMap()) {
      return Error(map, path, "expected " + what + " (a map of keys), got " + KindName(map));
    }
    std::vector<std::pair<std::string, YAML::Node>> out;
    for (const auto& kv : map) {
      if (!kv.first.IsScalar()) return Error(kv.first, path, "expected a key name");
      std::string key = kv.first.Scalar();
      std::string key_path = path.empty() ? key : path + "." + key;
      for (const auto& seen : out) {
        if (seen.first == key) return Error(kv.first, key_path, "duplicate key \"" + key + "\"");
      }
      if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        return Error(kv.first, key_path, UnknownKeyMessage(key, what, allowed));
      }
      key_marks_[key_path] = kv.first.Mark();
      out.emplace_back(key, kv.second);
    }
    return out;
  }

  StatusOr<std::string> String(const YAML::Node& n, const std::string& path,
                               const std::string& example) const {
    if (!n.IsScalar()) {
      return Error(n, path, "expected a string such as " + example + ", got " + KindName(n));
    }
    return n.Scalar();
  }

  StatusOr<bool> Bool(const YAML::Node& n, const std::string& path) const {
    std::string v = n.IsScalar() ? Lower(n.Scalar()) : "";
    if (v == "true" || v == "yes") return true;
    if (v == "false" || v == "no") return false;
    return Error(n, path, "expected true or false, got " + Got(n));
  }

  StatusOr<Template> TemplateField(const YAML::Node& n, const std::string& path,
                                   const std::string& example) const {
    ASSIGN_OR_RETURN(std::string text, String(n, path, example));
    StatusOr<Template> t = Template::Parse(text);
    if (!t.ok()) return Error(n, path, t.status().message());
    return t;
  }

 private:
  static std::string UnknownKeyMessage(const std::string& key, const std::string& what,
                                       const std::vector<std::string>& allowed) {
    std::string msg = "unknown key \"" + key + "\" in " + what;
    std::string best;
    size_t best_d = 3;  // suggest only close misspellings
    for (const auto& a : allowed) {
      size_t d = EditDistance(key, a);
      if (d < best_d) best_d = d, best = a;
    }
    if (!best.empty()) return msg + " (did you mean \"" + best + "\"?)";
    return msg + "; expected one of: " + JoinKeys(allowed);
  }

  std::string file_;
  // Document path -> its key's position, for empty values (see Where).
  mutable std::map<std::string, YAML::Mark> key_marks_;
};

const std::vector<std::string> kPlayKeys = {"name", "hosts", "become", "vars", "tasks"};
const std::vector<std::string> kTaskKeys = {"name",   "shell",    "command", "copy",
                                            "when",   "creates",  "unless",  "changed_when",
                                            "become", "timeout_s"};
const std::vector<std::string> kCopyKeys = {"src", "content", "dest", "mode"};

StatusOr<int> ParseMode(const Walker& w, const YAML::Node& n, const std::string& path) {
  std::string text = n.IsScalar() ? n.Scalar() : "";
  bool octal = (text.size() == 3 || text.size() == 4) &&
               std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '7'; });
  if (!octal) {
    return w.Error(n, path, "expected an octal mode such as \"0755\", got " + Got(n));
  }
  return std::stoi(text, nullptr, 8);
}

StatusOr<int> ParseTimeout(const Walker& w, const YAML::Node& n, const std::string& path) {
  std::string text = n.IsScalar() ? n.Scalar() : "";
  bool digits = !text.empty() && text.size() <= 6 &&
                std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  int v = digits ? std::stoi(text) : 0;
  if (v < 1 || v > kMaxTaskTimeoutS) {
    return w.Error(n, path,
                   "expected a whole number of seconds from 1 to " +
                       std::to_string(kMaxTaskTimeoutS) + " such as 120, got " + Got(n));
  }
  return v;
}

Status ParseCopy(const Walker& w, const YAML::Node& n, const std::string& path, Task* task) {
  ASSIGN_OR_RETURN(auto entries, w.Entries(n, path, "copy", kCopyKeys));
  bool has_dest = false, has_content = false;
  for (const auto& [key, value] : entries) {
    std::string p = path + "." + key;
    task->fields["copy." + key] = w.Where(value, p);
    if (key == "src") {
      ASSIGN_OR_RETURN(task->copy.src, w.TemplateField(value, p, "\"files/agent.conf\""));
      task->copy.has_src = true;
    } else if (key == "content") {
      ASSIGN_OR_RETURN(task->copy.content, w.TemplateField(value, p, "\"text\""));
      has_content = true;
    } else if (key == "dest") {
      ASSIGN_OR_RETURN(task->copy.dest, w.TemplateField(value, p, "/etc/coord/agent.conf"));
      const std::string& d = task->copy.dest.text();
      if (d.rfind("/", 0) != 0 && d.rfind("{{", 0) != 0) {
        return w.Error(value, p, "expected an absolute path on the host, got \"" + d + "\"");
      }
      has_dest = true;
    } else if (key == "mode") {
      ASSIGN_OR_RETURN(task->copy.mode, ParseMode(w, value, p));
    }
  }
  if (!has_dest) return w.Error(n, path, "copy needs dest: (the absolute path on the host)");
  if (task->copy.has_src == has_content) {
    return w.Error(n, path,
                   task->copy.has_src ? "copy takes src: or content:, not both"
                                      : "copy needs src: (a local file) or content: (text)");
  }
  return Status::Ok();
}

std::string DefaultTaskName(const Task& t) {
  std::string what = t.action == ActionKind::kCopy ? t.copy.dest.text() : t.command.text();
  what = what.substr(0, what.find('\n'));
  if (what.size() > 40) what = what.substr(0, 37) + "...";
  return std::string(ActionKindName(t.action)) + ": " + what;
}

StatusOr<Task> ParseTask(const Walker& w, const YAML::Node& n, const std::string& path) {
  Task task;
  task.where = w.Where(n, path);
  ASSIGN_OR_RETURN(auto entries, w.Entries(n, path, "a task", kTaskKeys));
  std::string action_key;
  for (const auto& [key, value] : entries) {
    std::string p = path + "." + key;
    task.fields[key] = w.Where(value, p);
    if (key == "shell" || key == "command" || key == "copy") {
      if (!action_key.empty()) {
        return w.Error(value, p,
                       "a task has exactly one action and this one already has \"" + action_key +
                           "\"; split it into two tasks");
      }
      action_key = key;
      if (key == "copy") {
        task.action = ActionKind::kCopy;
        RETURN_IF_ERROR(ParseCopy(w, value, p, &task));
      } else {
        task.action = key == "shell" ? ActionKind::kShell : ActionKind::kCommand;
        ASSIGN_OR_RETURN(task.command,
                         w.TemplateField(value, p, "\"systemctl restart coord-agent\""));
      }
    } else if (key == "name") {
      ASSIGN_OR_RETURN(task.name, w.String(value, p, "\"Install NFS client\""));
    } else if (key == "when") {
      ASSIGN_OR_RETURN(std::string text, w.String(value, p, "'os_family == \"Debian\"'"));
      StatusOr<Condition> c = Condition::Parse(text);
      if (!c.ok()) return w.Error(value, p, c.status().message() + " in: " + text);
      task.when = *c;
    } else if (key == "creates") {
      ASSIGN_OR_RETURN(task.creates, w.TemplateField(value, p, "/sbin/mount.nfs"));
    } else if (key == "unless") {
      ASSIGN_OR_RETURN(task.unless, w.TemplateField(value, p, "\"mountpoint -q /mnt/cfs\""));
    } else if (key == "changed_when") {
      ASSIGN_OR_RETURN(task.changed_when, w.Bool(value, p));
    } else if (key == "become") {
      ASSIGN_OR_RETURN(task.become, w.Bool(value, p));
    } else if (key == "timeout_s") {
      ASSIGN_OR_RETURN(task.timeout_s, ParseTimeout(w, value, p));
    }
  }
  if (action_key.empty()) {
    return w.Error(n, path, "a task needs exactly one action: shell:, command: or copy:");
  }
  if (task.action == ActionKind::kCopy) {
    // A copy is its own probe (sha256 + mode); these would be ignored.
    for (const char* key : {"creates", "unless", "changed_when"}) {
      auto it = task.fields.find(key);
      if (it != task.fields.end()) {
        return InvalidArgument(it->second.ToString() + ": " + key +
                               " applies to shell and command tasks, not copy (a copy "
                               "already reports changed only when the file differs)");
      }
    }
  }
  if (task.name.empty()) task.name = DefaultTaskName(task);
  return task;
}

StatusOr<Vars> ParseVarsMap(const Walker& w, const YAML::Node& n, const std::string& path,
                            std::map<std::string, SourceLocation>* locations) {
  ASSIGN_OR_RETURN(auto entries, w.Entries(n, path, "vars", {}));
  Vars vars;
  for (const auto& [key, value] : entries) {
    std::string p = path.empty() ? key : path + "." + key;
    if (!IsValidVarName(key)) {
      return w.Error(
          value, p,
          "a variable name is letters, digits and _ (not starting with a digit), got \"" + key +
              "\"");
    }
    if (!value.IsScalar()) {
      return w.Error(value, p,
                     std::string("expected a scalar value (write \"\" for an empty string), got ") +
                         KindName(value));
    }
    StatusOr<Template> t = Template::Parse(value.Scalar());
    if (!t.ok()) return w.Error(value, p, t.status().message());
    vars[key] = value.Scalar();
    if (locations) (*locations)[key] = w.Where(value, p);
  }
  return vars;
}

StatusOr<Play> ParsePlay(const Walker& w, const YAML::Node& n, const std::string& path) {
  Play play;
  play.where = w.Where(n, path);
  ASSIGN_OR_RETURN(auto entries, w.Entries(n, path, "a play", kPlayKeys));
  bool has_hosts = false, has_tasks = false;
  for (const auto& [key, value] : entries) {
    std::string p = path + "." + key;
    if (key == "name") {
      ASSIGN_OR_RETURN(play.name, w.String(value, p, "\"Prepare an HCC node\""));
    } else if (key == "hosts") {
      ASSIGN_OR_RETURN(std::string hosts, w.String(value, p, "all"));
      if (hosts != "all") {
        return w.Error(value, p,
                       "expected \"all\" (the hosts file is the inventory; groups are not "
                       "supported), got \"" +
                           hosts + "\"");
      }
      has_hosts = true;
    } else if (key == "become") {
      ASSIGN_OR_RETURN(play.become, w.Bool(value, p));
    } else if (key == "vars") {
      ASSIGN_OR_RETURN(play.vars, ParseVarsMap(w, value, p, &play.var_locations));
    } else if (key == "tasks") {
      if (!value.IsSequence()) {
        return w.Error(value, p,
                       std::string("expected a list of tasks (each starting with \"- \"), got ") +
                           KindName(value));
      }
      for (size_t i = 0; i < value.size(); ++i) {
        ASSIGN_OR_RETURN(Task t, ParseTask(w, value[i], p + "[" + std::to_string(i) + "]"));
        play.tasks.push_back(std::move(t));
      }
      has_tasks = true;
    }
  }
  if (!has_hosts) return w.Error(n, path, "a play needs hosts: all");
  if (!has_tasks) return w.Error(n, path, "a play needs tasks: (a list of tasks)");
  return play;
}

// Turns yaml-cpp's syntax errors into our "file:line:col: ..." form.
StatusOr<YAML::Node> LoadYaml(const std::string& text, const std::string& file) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    std::string where = file;
    if (!e.mark.is_null()) {
      where += ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1);
    }
    return InvalidArgument(where + ": YAML syntax error: " + e.msg);
  }
}

}  // namespace

StatusOr<Playbook> ParsePlaybook(const std::string& text, const std::string& file) {
  ASSIGN_OR_RETURN(YAML::Node root, LoadYaml(text, file));
  Walker w(file);
  if (!root.IsDefined() || root.IsNull()) {
    return InvalidArgument(file + ": the playbook is empty; expected a list of plays");
  }
  if (!root.IsSequence()) {
    return w.Error(root, "",
                   std::string("expected a list of plays, got ") + KindName(root) +
                       "; start each play with \"- \" (as in Ansible)");
  }
  if (root.size() == 0) return w.Error(root, "", "expected at least one play");
  Playbook pb;
  pb.file = file;
  pb.base_dir = Dirname(file);
  try {
    for (size_t i = 0; i < root.size(); ++i) {
      ASSIGN_OR_RETURN(Play play, ParsePlay(w, root[i], "[" + std::to_string(i) + "]"));
      pb.plays.push_back(std::move(play));
    }
  } catch (const YAML::Exception& e) {  // yaml-cpp throws on misuse; never expected
    return InvalidArgument(file + ": " + e.what());
  }
  return pb;
}

StatusOr<Playbook> LoadPlaybook(const std::string& file) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(file));
  return ParsePlaybook(text, file);
}

StatusOr<Vars> ParseVarsFile(const std::string& text, const std::string& file) {
  ASSIGN_OR_RETURN(YAML::Node root, LoadYaml(text, file));
  if (!root.IsDefined() || root.IsNull()) return Vars{};
  Walker w(file);
  if (!root.IsMap()) {
    return w.Error(root, "",
                   std::string("expected a map of variables (name: value), got ") + KindName(root));
  }
  return ParseVarsMap(w, root, "", nullptr);
}

StatusOr<Vars> LoadVarsFile(const std::string& file) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(file));
  return ParseVarsFile(text, file);
}

Status ParseVarAssignment(const std::string& arg, Vars* vars) {
  size_t eq = arg.find('=');
  std::string name = arg.substr(0, eq);
  if (eq == std::string::npos || !IsValidVarName(name)) {
    return InvalidArgument("--var " + arg +
                           ": expected name=value with a name of letters, digits and _, "
                           "e.g. --var cfs_mount=/mnt/cfs");
  }
  StatusOr<Template> t = Template::Parse(arg.substr(eq + 1));
  if (!t.ok()) return InvalidArgument("--var " + name + ": " + t.status().message());
  (*vars)[name] = arg.substr(eq + 1);
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Validation and the variable scope

static Status CheckNames(const std::vector<std::string>& used, const std::set<std::string>& known,
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

void VarScope::AddLayer(const Vars* vars, bool templated) { layers_.push_back({vars, templated}); }

StatusOr<std::string> VarScope::Lookup(const std::string& name) const {
  std::vector<std::string> stack;
  return Resolve(name, &stack);
}

VarLookup VarScope::AsLookup() const {
  return [this](const std::string& name) { return Lookup(name); };
}

StatusOr<std::string> VarScope::Resolve(const std::string& name,
                                        std::vector<std::string>* stack) const {
  for (const Layer& layer : layers_) {
    auto it = layer.vars->find(name);
    if (it == layer.vars->end()) continue;
    if (!layer.templated || it->second.find("{{") == std::string::npos) return it->second;
    if (std::find(stack->begin(), stack->end(), name) != stack->end()) {
      std::string chain;
      for (const auto& s : *stack) chain += s + " -> ";
      return InvalidArgument("variable \"" + name + "\" refers to itself: " + chain + name);
    }
    StatusOr<Template> t = Template::Parse(it->second);
    if (!t.ok()) return InvalidArgument("variable \"" + name + "\": " + t.status().message());
    stack->push_back(name);
    StatusOr<std::string> value =
        t->Render([&](const std::string& inner) { return Resolve(inner, stack); });
    stack->pop_back();
    return value;
  }
  return NotFound("undefined variable \"" + name + "\"");
}

}  // namespace coord::playbooks
