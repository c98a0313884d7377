// Unit tests for the playbook model (playbooks/runner/playbook.h): locations
// as they lead messages, the model's small helpers, and the load-time check
// that every variable a playbook uses is defined, named at the field that uses
// it. Playbooks come from the parser (playbook_test_util.h). Pure.
#include "playbooks/runner/playbook.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "playbook_test_util.h"

namespace coord::playbooks {
namespace {

using ::testing::StartsWith;

TEST(PlaybookModelTest, SourceLocationLeavesOutWhatItDoesNotKnow) {
  EXPECT_EQ((SourceLocation{"a.yaml", 12, 7, "[0].tasks[3].copy.mode"}).ToString(),
            "a.yaml:12:7: [0].tasks[3].copy.mode");
  EXPECT_EQ((SourceLocation{"a.yaml", 12, 7, ""}).ToString(), "a.yaml:12:7");
  EXPECT_EQ((SourceLocation{"a.yaml", 0, 0, "[0]"}).ToString(), "a.yaml: [0]");
  EXPECT_EQ((SourceLocation{"a.yaml", 0, 0, ""}).ToString(), "a.yaml");
}

TEST(PlaybookModelTest, ActionNamesTaskCountAndFacts) {
  EXPECT_STREQ(ActionKindName(ActionKind::kShell), "shell");
  EXPECT_STREQ(ActionKindName(ActionKind::kCommand), "command");
  EXPECT_STREQ(ActionKindName(ActionKind::kCopy), "copy");
  EXPECT_EQ(Playbook{}.TaskCount(), 0);
  Playbook pb = ParseOk(
      "- hosts: all\n  tasks: [{shell: a}, {shell: b}]\n"
      "- hosts: all\n  tasks: []\n- hosts: all\n  tasks: [{shell: c}]\n");
  EXPECT_EQ(pb.TaskCount(), 3);
  // Every host defines these (the runner gathers them); playbooks may use
  // them without defining them.
  EXPECT_EQ(FactNames(),
            (std::vector<std::string>{"inventory_hostname", "os_family", "distribution",
                                      "distribution_version", "arch", "user_id", "has_systemd"}));
}

TEST(PlaybookCheckVariablesTest, UndefinedNamesAreCaughtAtLoadTime) {
  Playbook pb = ParseOk(kExample);
  // cfs_export and agent_binary are defined nowhere in the playbook.
  Status st = CheckVariablesDefined(pb, {});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(),
            "pb.yaml:13:14: [0].tasks[1].shell (task \"Mount the CFS export\"): undefined "
            "variable \"cfs_export\"; define it under the play's vars:, in the vars file, or "
            "with --var cfs_export=...");
  st = CheckVariablesDefined(pb, {"cfs_export"});
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), StartsWith("pb.yaml:20:19: [0].tasks[3].copy.src (task \"Upload the "
                                       "agent\"): undefined variable \"agent_binary\""));
  // os_family in `when` is a fact; cfs_mount is a play var.
  EXPECT_TRUE(CheckVariablesDefined(pb, {"cfs_export", "agent_binary"}).ok());

  Playbook two = ParseOk(R"(- hosts: all
  vars: {dir: "{{ base }}/x"}
  tasks: [{shell: "ls {{ dir }}", when: has_systemd and flag}]
- hosts: all
  tasks: [{shell: "ls {{ dir }}"}]
)");
  st = CheckVariablesDefined(two, {"flag"});
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), StartsWith("pb.yaml:2:15: [0].vars.dir: undefined variable \"base\""));
  st = CheckVariablesDefined(two, {"flag", "base"});
  ASSERT_FALSE(st.ok());  // play vars do not leak into the next play
  EXPECT_THAT(st.message(), StartsWith("pb.yaml:5:19: [1].tasks[0].shell"));
  st = CheckVariablesDefined(two, {"base"});
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), StartsWith("pb.yaml:3:41: [0].tasks[0].when"));
  EXPECT_TRUE(CheckVariablesDefined(two, {"flag", "base", "dir"}).ok());
}

// Every templated field is checked, and the error points at that field (not
// at the task): creates, unless, copy's dest and content.
TEST(PlaybookCheckVariablesTest, EachFieldIsNamedWhereItUsesTheVariable) {
  Playbook pb = ParseOk(R"(- hosts: all
  tasks:
    - name: probe
      shell: "true"
      creates: "{{ c }}"
      unless: "test -e {{ u }}"
    - name: write
      copy:
        dest: "{{ d }}/conf"
        content: "{{ t }}"
)");
  const std::pair<std::set<std::string>, const char*> steps[] = {
      {{}, "pb.yaml:5:16: [0].tasks[0].creates (task \"probe\"): undefined variable \"c\""},
      {{"c"}, "pb.yaml:6:15: [0].tasks[0].unless (task \"probe\"): undefined variable \"u\""},
      {{"c", "u"},
       "pb.yaml:9:15: [0].tasks[1].copy.dest (task \"write\"): undefined variable \"d\""},
      {{"c", "u", "d"},
       "pb.yaml:10:18: [0].tasks[1].copy.content (task \"write\"): undefined variable \"t\""},
  };
  for (const auto& [defined, message] : steps) {
    Status st = CheckVariablesDefined(pb, defined);
    ASSERT_FALSE(st.ok()) << message;
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(st.message(), StartsWith(message));
  }
  EXPECT_TRUE(CheckVariablesDefined(pb, {"c", "u", "d", "t"}).ok());
  // Facts need no definition anywhere.
  Playbook facts = ParseOk(
      "- hosts: all\n  tasks: [{shell: \"echo {{ arch }}\", when: has_systemd and "
      "os_family == 'Debian'}]\n");
  EXPECT_TRUE(CheckVariablesDefined(facts, {}).ok());
}

}  // namespace
}  // namespace coord::playbooks
