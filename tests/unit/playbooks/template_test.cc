// Unit tests for `{{ name }}` templates (playbooks/runner/template.h): rendering
// with any spacing, the names a template uses, lookup errors passed through, and
// every rejected template with the character it points at. Pure.
#include "playbooks/runner/template.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "playbook_test_util.h"

namespace coord::playbooks {
namespace {

TEST(TemplateTest, RendersNamesWithAnySpacing) {
  Vars vars = {{"a", "1"}, {"b_2", "two"}, {"empty", ""}};
  for (auto [text, want] : std::vector<std::pair<std::string, std::string>>{
           {"plain", "plain"},
           {"{{a}}", "1"},
           {"x{{ a }}y{{  b_2\t}}z{{ empty }}", "x1ytwoz"},
           {"{{ a }}{{ a }}", "11"},
           {"${#array[@]} } {", "${#array[@]} } {"},  // shell braces are not templates
           {"", ""},
       }) {
    StatusOr<Template> t = Template::Parse(text);
    ASSERT_TRUE(t.ok()) << text << ": " << t.status().ToString();
    StatusOr<std::string> got = t->Render(MapLookup(vars));
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, want) << text;
  }
  StatusOr<Template> t = Template::Parse("{{ a }} {{ b_2 }} {{ a }}");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->variables(), (std::vector<std::string>{"a", "b_2"}));
}

TEST(TemplateTest, UndefinedVariableAndBadSyntax) {
  StatusOr<Template> t = Template::Parse("mount {{ cfs_export }}");
  ASSERT_TRUE(t.ok());
  StatusOr<std::string> got = t->Render(MapLookup({}));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().message(), "undefined variable \"cfs_export\"");

  for (const char* bad : {"{{", "a {{ b", "{{ }}", "{{ 1x }}", "{{ a.b }}", "{{ a b }}"}) {
    EXPECT_FALSE(Template::Parse(bad).ok()) << bad;
  }
}

// The message says which "{{" (1-based character) and what was expected; the
// YAML parser prefixes file:line:col and the document path.
TEST(TemplateTest, ParseErrorsSayWhereAndWhatWasExpected) {
  const std::pair<const char*, const char*> cases[] = {
      {"{{", "\"{{\" at character 1 is not closed with \"}}\""},
      {"echo {{ a }} {{ b", "\"{{\" at character 14 is not closed with \"}}\""},
      {"x {{ }}",
       "expected a variable name between \"{{\" and \"}}\" at character 3, got \"\" (only plain "
       "names such as {{ cfs_mount }}: no filters or expressions)"},
      {"{{ 1x }}",
       "expected a variable name between \"{{\" and \"}}\" at character 1, got \"1x\" (only "
       "plain names such as {{ cfs_mount }}: no filters or expressions)"},
      {"{{ host.name }}",
       "expected a variable name between \"{{\" and \"}}\" at character 1, got \"host.name\" "
       "(only plain names such as {{ cfs_mount }}: no filters or expressions)"},
  };
  for (const auto& [text, message] : cases) {
    StatusOr<Template> t = Template::Parse(text);
    ASSERT_FALSE(t.ok()) << text;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_EQ(t.status().message(), message) << text;
  }
}

TEST(TemplateTest, KeepsTheTextAndNamesNoVariablesWithoutBraces) {
  StatusOr<Template> t = Template::Parse("mountpoint -q /mnt/cfs");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->text(), "mountpoint -q /mnt/cfs");
  EXPECT_TRUE(t->variables().empty());
  // A default Template is the empty text.
  StatusOr<std::string> empty = Template().Render(MapLookup({}));
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");
}

// Render stops at the first failing lookup and returns that error unchanged
// (its code too: the runner tells undefined from unproducible values).
TEST(TemplateTest, RenderStopsAtTheFirstLookupError) {
  StatusOr<Template> t = Template::Parse("{{ ok }} {{ broken }} {{ never }}");
  ASSERT_TRUE(t.ok());
  std::vector<std::string> asked;
  StatusOr<std::string> got = t->Render([&](const std::string& name) -> StatusOr<std::string> {
    asked.push_back(name);
    if (name == "broken") return Unavailable("fact \"broken\" could not be gathered");
    return std::string("v");
  });
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(got.status().message(), "fact \"broken\" could not be gathered");
  EXPECT_EQ(asked, (std::vector<std::string>{"ok", "broken"}));
}

TEST(TemplateTest, ValidVariableNames) {
  for (const char* good : {"a", "_", "_x", "cfs_mount", "A1", "x_2_y"}) {
    EXPECT_TRUE(IsValidVarName(good)) << good;
  }
  for (const char* bad : {"", "1x", "cfs-mount", "a.b", "a b", "x!", "é"}) {
    EXPECT_FALSE(IsValidVarName(bad)) << bad;
  }
}

}  // namespace
}  // namespace coord::playbooks
