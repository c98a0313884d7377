// Unit tests for the `when` language (playbooks/runner/condition.h): the
// grammar and its precedence, truthiness, short-circuits, the names a condition
// uses, lookup errors passed through, and every rejected expression with the
// character it points at. Pure: strings in, no YAML.
#include "playbooks/runner/condition.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "playbook_test_util.h"

namespace coord::playbooks {
namespace {

using ::testing::HasSubstr;

TEST(ConditionTest, EvaluatesTheGrammar) {
  Vars vars = {{"os_family", "RedHat"}, {"empty", ""}, {"f", "false"},
               {"zero", "0"},           {"no", "No"},  {"yes", "yes"},
               {"q", "it's \"x\""}};
  const std::pair<const char*, bool> cases[] = {
      {"os_family == \"RedHat\"", true},
      {"os_family == 'RedHat'", true},
      {"os_family != 'RedHat'", false},
      {"os_family == \"redhat\"", false},
      {"yes", true},
      {"empty", false},
      {"f", false},
      {"zero", false},
      {"no", false},
      {"not f", true},
      {"not not yes", true},
      {"f or yes and os_family == \"Debian\"", false},  // and binds tighter than or
      {"(f or yes) and os_family == \"RedHat\"", true},
      {"yes and not (empty or f)", true},
      {"q == 'it\\'s \"x\"'", true},
      {"{{ yes }} and {{os_family}} == 'RedHat'", true},  // tolerated, as in Ansible
      {"yes or undefined_var", true},                     // short-circuit, as Jinja
      {"f and undefined_var", false},
  };
  for (const auto& [text, want] : cases) {
    StatusOr<Condition> c = Condition::Parse(text);
    ASSERT_TRUE(c.ok()) << text << ": " << c.status().ToString();
    StatusOr<bool> got = c->Evaluate(MapLookup(vars));
    ASSERT_TRUE(got.ok()) << text << ": " << got.status().ToString();
    EXPECT_EQ(*got, want) << text;
  }
  StatusOr<Condition> c = Condition::Parse("a == 'x' or (not b and a != \"y\")");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->variables(), (std::vector<std::string>{"a", "b"}));

  StatusOr<Condition> undefined = Condition::Parse("yes and nope");
  ASSERT_TRUE(undefined.ok());
  StatusOr<bool> got = undefined->Evaluate(MapLookup(vars));
  ASSERT_FALSE(got.ok());
  EXPECT_THAT(got.status().message(), HasSubstr("\"nope\""));
}

TEST(ConditionTest, ParseErrorsSayWhere) {
  const std::pair<const char*, const char*> cases[] = {
      {"os_family = \"x\"",
       "at character 11: \"=\" is not an operator; compare with \"==\" or \"!=\""},
      {"(a and b",
       "at character 9: expected \")\" to close the \"(\" at character 1, got the end "
       "of the expression"},
      {"a b", "at character 3: expected \"and\", \"or\", \"==\", \"!=\" or the end, got \"b\""},
      {"a is defined",
       "at character 3: expected \"and\", \"or\", \"==\", \"!=\" or the end, got \"is\""},
      {"{{ a | bool }}",
       "at character 1: expected {{ name }} with a plain variable name; in `when` the bare name "
       "is enough, e.g. os_family == \"RedHat\""},
      {"{{ a",
       "at character 1: expected {{ name }} with a plain variable name; in `when` the bare name "
       "is enough, e.g. os_family == \"RedHat\""},
      {"a == \"x", "at character 6: the string is not closed with \""},
      {"and a", "at character 1: expected a variable name, \"not\" or \"(\", got \"and\""},
      {"a ==",
       "at character 5: expected a quoted string after \"==\", got the end of the "
       "expression"},
      {"a == 1",
       "at character 6: unexpected \"1\"; `when` knows only names, quoted strings, ==, "
       "!=, and, or, not and parentheses"},
      {"  ", "empty condition; expected e.g. os_family == \"Debian\""},
  };
  for (const auto& [text, message] : cases) {
    StatusOr<Condition> c = Condition::Parse(text);
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_EQ(c.status().message(), message) << text;
  }
}

// More bad input: a dangling operator, stray parentheses, chained comparisons,
// a string where a name belongs, shell operators. Each names the character
// and what was expected there.
TEST(ConditionTest, MoreParseErrorsNameTheCharacterAndTheExpectation) {
  const std::pair<const char*, const char*> cases[] = {
      {"not",
       "at character 4: expected a variable name, \"not\" or \"(\", got the end of the "
       "expression"},
      {"a or",
       "at character 5: expected a variable name, \"not\" or \"(\", got the end of the "
       "expression"},
      {"()", "at character 2: expected a variable name, \"not\" or \"(\", got \")\""},
      {"a)", "at character 2: expected \"and\", \"or\", \"==\", \"!=\" or the end, got \")\""},
      {"a == 'x' == 'y'",
       "at character 10: expected \"and\", \"or\", \"==\", \"!=\" or the end, got \"==\""},
      {"'RedHat' == os_family",
       "at character 1: expected a variable name, \"not\" or \"(\", got the string \"RedHat\""},
      {"a != b",
       "at character 6: expected a quoted string after \"!=\", got \"b\" (quote it: "
       "\"b\")"},
      {"a && b",
       "at character 3: unexpected \"&\"; `when` knows only names, quoted strings, ==, !=, and, "
       "or, not and parentheses"},
      {"a == 'x", "at character 6: the string is not closed with '"},
  };
  for (const auto& [text, message] : cases) {
    StatusOr<Condition> c = Condition::Parse(text);
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_EQ(c.status().message(), message) << text;
  }
}

// Parsing and evaluating recurse per "(" / "not" and per operator: 4000 "(" overflowed
// the stack (tests/fuzz/when_condition_fuzz.cc), so nesting and length are bounded.
TEST(ConditionTest, DeepNestingAndLongChainsAreErrorsNotACrash) {
  const std::string deep = std::string(100000, '(') + "a" + std::string(100000, ')');
  StatusOr<Condition> c = Condition::Parse(deep);  // refused by length before parsing
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "at character 257: more than 256 names, strings and operators; a `when:` holds a "
            "few comparisons, simplify it");
  c = Condition::Parse(std::string(40, '(') + "a" + std::string(40, ')'));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "at character 33: \"(\" and \"not\" nested deeper than 32 levels");
  std::string nots;
  for (int i = 0; i < 40; ++i) nots += "not ";
  c = Condition::Parse(nots + "a");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "at character 129: \"(\" and \"not\" nested deeper than 32 levels");
  std::string nested = "a";
  for (int i = 0; i < 32; ++i) nested = "(" + nested + ")";
  EXPECT_TRUE(Condition::Parse(nested).ok());  // the limit itself is fine

  std::string chain = "a";
  for (int i = 0; i < 200; ++i) chain += " and a";
  c = Condition::Parse(chain);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "at character 769: more than 256 names, strings and operators; a `when:` holds a "
            "few comparisons, simplify it");
}

TEST(ConditionTest, Truthiness) {
  for (const char* falsy : {"", "false", "False", "FALSE", "0", "no", "No", "NO"}) {
    EXPECT_FALSE(IsTruthy(falsy)) << falsy;
  }
  // Only those four words are false: anything else, even "off" or " ", is true.
  for (const char* truthy : {"true", "yes", "1", "2", "off", "n", " ", "00", "RedHat"}) {
    EXPECT_TRUE(IsTruthy(truthy)) << truthy;
  }
}

// A comparison's lookup error comes back unchanged (code and message), and
// the text is kept as written for messages.
TEST(ConditionTest, LookupErrorsComeBackUnchanged) {
  StatusOr<Condition> c = Condition::Parse("  os_family == 'Debian' ");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->text(), "  os_family == 'Debian' ");
  StatusOr<bool> got = c->Evaluate([](const std::string& name) -> StatusOr<std::string> {
    return Unavailable("fact \"" + name + "\" was not gathered");
  });
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(got.status().message(), "fact \"os_family\" was not gathered");
}

// Copies share the parsed tree and evaluate alike; a default-constructed
// Condition was never parsed and says so instead of crashing.
TEST(ConditionTest, CopiesEvaluateAlikeAndAnUnparsedOneIsAnError) {
  StatusOr<Condition> parsed = Condition::Parse("not a");
  ASSERT_TRUE(parsed.ok());
  Condition copy = *parsed;
  parsed = Condition::Parse("a");  // the copy keeps its own tree alive
  ASSERT_TRUE(parsed.ok());
  StatusOr<bool> got = copy.Evaluate(MapLookup({{"a", "no"}}));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got);

  StatusOr<bool> unparsed = Condition().Evaluate(MapLookup({}));
  ASSERT_FALSE(unparsed.ok());
  EXPECT_EQ(unparsed.status().code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace coord::playbooks
