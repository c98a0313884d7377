// Unit tests for the layered variable scope (playbooks/runner/var_scope.h):
// precedence, expansion of templated values against the whole scope, facts
// kept raw, loops and bad values reported with the variable's name, and the
// scope as a VarLookup for templates and conditions. Pure.
#include "playbooks/runner/var_scope.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "playbooks/runner/condition.h"

namespace coord::playbooks {
namespace {

TEST(VarScopeTest, PrecedenceTemplatesAndLoops) {
  Vars cli = {{"a", "cli"}};
  Vars file = {{"a", "file"}, {"b", "file"}, {"dir", "{{ root }}/{{ inventory_hostname }}"}};
  Vars play = {{"a", "play"},
               {"b", "play"},
               {"c", "play"},
               {"root", "/srv"},
               {"loop1", "{{ loop2 }}"},
               {"loop2", "x{{ loop1 }}"},
               {"bad", "{{ x"}};
  Vars facts = {{"inventory_hostname", "n1"}, {"c", "fact"}, {"raw", "{{ a }}"}};
  VarScope scope;
  scope.AddLayer(&cli, true);
  scope.AddLayer(&file, true);
  scope.AddLayer(&play, true);
  scope.AddLayer(&facts, false);
  EXPECT_EQ(*scope.Lookup("a"), "cli");
  EXPECT_EQ(*scope.Lookup("b"), "file");
  EXPECT_EQ(*scope.Lookup("c"), "play");
  EXPECT_EQ(*scope.Lookup("dir"), "/srv/n1");
  EXPECT_EQ(*scope.Lookup("raw"), "{{ a }}");  // facts are never templates
  StatusOr<std::string> loop = scope.Lookup("loop1");
  ASSERT_FALSE(loop.ok());
  EXPECT_EQ(loop.status().message(),
            "variable \"loop1\" refers to itself: loop1 -> loop2 -> loop1");
  StatusOr<std::string> missing = scope.Lookup("nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(scope.Lookup("bad").ok());
}

// A templated value's names are looked up in the whole scope from the top, so
// a lower layer's value sees the higher layer's override of what it uses.
TEST(VarScopeTest, TemplatedValuesUseTheWinningValueOfEachName) {
  Vars cli = {{"base", "/cli"}};
  Vars play = {{"base", "/play"}, {"path", "{{ base }}/x"}, {"plain", "a}}b"}};
  VarScope scope;
  scope.AddLayer(&cli, true);
  scope.AddLayer(&play, true);
  EXPECT_EQ(*scope.Lookup("path"), "/cli/x");
  EXPECT_EQ(*scope.Lookup("plain"), "a}}b");  // no "{{": not a template
}

// Bad values: each error names the variable the user wrote and what is wrong.
TEST(VarScopeTest, BadValuesNameTheVariable) {
  Vars vars = {{"self", "{{ self }}"},
               {"bad", "echo {{ x"},
               {"uses_bad", "{{ bad }}"},
               {"uses_undefined", "a {{ nope }}"}};
  VarScope scope;
  scope.AddLayer(&vars, true);

  StatusOr<std::string> self = scope.Lookup("self");
  ASSERT_FALSE(self.ok());
  EXPECT_EQ(self.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(self.status().message(), "variable \"self\" refers to itself: self -> self");

  StatusOr<std::string> bad = scope.Lookup("bad");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(),
            "variable \"bad\": \"{{\" at character 6 is not closed with \"}}\"");
  StatusOr<std::string> uses_bad = scope.Lookup("uses_bad");
  ASSERT_FALSE(uses_bad.ok());
  EXPECT_EQ(uses_bad.status().message(), bad.status().message());

  // The innermost missing name is the one reported, as NotFound.
  StatusOr<std::string> undefined = scope.Lookup("uses_undefined");
  ASSERT_FALSE(undefined.ok());
  EXPECT_EQ(undefined.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(undefined.status().message(), "undefined variable \"nope\"");
}

TEST(VarScopeTest, AnEmptyScopeDefinesNothing) {
  VarScope scope;
  StatusOr<std::string> got = scope.Lookup("inventory_hostname");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(got.status().message(), "undefined variable \"inventory_hostname\"");
}

// How the runner uses it: the scope's lookup renders a task's templates and
// evaluates its `when`.
TEST(VarScopeTest, ServesTemplatesAndConditions) {
  Vars play = {{"cfs_mount", "/mnt/{{ inventory_hostname }}"}};
  Vars facts = {{"inventory_hostname", "n1"}, {"os_family", "Debian"}};
  VarScope scope;
  scope.AddLayer(&play, true);
  scope.AddLayer(&facts, false);

  StatusOr<Template> t = Template::Parse("mountpoint -q {{ cfs_mount }}");
  ASSERT_TRUE(t.ok());
  StatusOr<std::string> rendered = t->Render(scope.AsLookup());
  ASSERT_TRUE(rendered.ok()) << rendered.status().ToString();
  EXPECT_EQ(*rendered, "mountpoint -q /mnt/n1");

  StatusOr<Condition> c = Condition::Parse("os_family == 'Debian' and cfs_mount != '/mnt/n2'");
  ASSERT_TRUE(c.ok());
  StatusOr<bool> when = c->Evaluate(scope.AsLookup());
  ASSERT_TRUE(when.ok()) << when.status().ToString();
  EXPECT_TRUE(*when);
}

}  // namespace
}  // namespace coord::playbooks
