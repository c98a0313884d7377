// The `when` language (condition.h): a tokenizer, a recursive descent parser
// that builds a small shared tree, and its evaluator. Pure.
#include "playbooks/runner/condition.h"
#include "common/strings.h"

#include <algorithm>
#include <cctype>
#include <utility>

namespace coord::playbooks {

// ---------------------------------------------------------------------------
// The tree, the tokenizer, the parser and the evaluator

struct Condition::Node {
  enum Kind { kVar, kEq, kNe, kNot, kAnd, kOr } kind = kVar;
  std::string name;                         // kVar, kEq, kNe
  std::string literal;                      // kEq, kNe
  std::shared_ptr<const Node> left, right;  // kNot uses left
};

namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

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

// Parsing and evaluating recurse once per "(" / "not" and per operator of a chain (the
// tree of "a and b and c" is as deep as it is long), so both are bounded: a real `when:`
// has a handful of each, and 4000 "(" overflowed the stack.
constexpr size_t kMaxConditionTokens = 256;
constexpr int kMaxConditionNesting = 32;

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
  if (out.size() > kMaxConditionTokens + 1) {
    return ErrorAt(out[kMaxConditionTokens].pos,
                   "more than " + std::to_string(kMaxConditionTokens) +
                       " names, strings and operators; a `when:` holds a few comparisons, "
                       "simplify it");
  }
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
    const Token& t = Take();
    RETURN_IF_ERROR(Enter(t));
    ASSIGN_OR_RETURN(NodePtr operand, ParseNot());
    --depth_;
    return Binary(Condition::Node::kNot, operand, nullptr);
  }

  // One more level of "(" or "not"; an error past kMaxConditionNesting.
  Status Enter(const Token& t) {
    if (++depth_ > kMaxConditionNesting) {
      return ErrorAt(t.pos, "\"(\" and \"not\" nested deeper than " +
                                std::to_string(kMaxConditionNesting) + " levels");
    }
    return Status::Ok();
  }

  StatusOr<NodePtr> ParsePrimary() {
    const Token& t = Take();
    if (t.kind == Token::kLParen) {
      RETURN_IF_ERROR(Enter(t));
      ASSIGN_OR_RETURN(NodePtr inner, ParseOr());
      --depth_;
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
  int depth_ = 0;  // "(" and "not" around the token being parsed
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

bool IsTruthy(const std::string& value) {
  std::string v = Lower(value);
  return !(v.empty() || v == "false" || v == "0" || v == "no");
}

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

}  // namespace coord::playbooks
