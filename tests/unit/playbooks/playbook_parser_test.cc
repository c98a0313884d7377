// Unit tests for the playbook parser (playbooks/runner/playbook_parser.h): the
// documented example, every kind of rejected input with its file:line:col and
// document path, vars files and --var, and loading from real files (a
// TempDir). No processes.
#include "playbooks/runner/playbook_parser.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "playbook_test_util.h"
#include "tests/support/files.h"
#include "tests/support/temp_dir.h"

namespace coord::playbooks {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(PlaybookParseTest, ParsesTheDocumentedExample) {
  Playbook pb = ParseOk(kExample);
  ASSERT_EQ(pb.plays.size(), 1u);
  const Play& play = pb.plays[0];
  EXPECT_EQ(play.name, "Prepare an HCC node");
  EXPECT_TRUE(play.become);
  EXPECT_EQ(play.vars.at("cfs_mount"), "/mnt/cfs");
  ASSERT_EQ(play.tasks.size(), 5u);
  EXPECT_EQ(pb.TaskCount(), 5);
  EXPECT_EQ(pb.base_dir, ".");

  const Task& nfs = play.tasks[0];
  EXPECT_EQ(nfs.action, ActionKind::kShell);
  EXPECT_EQ(nfs.command.text(), "yum install -y nfs-utils");
  ASSERT_TRUE(nfs.when.has_value());
  EXPECT_EQ(nfs.when->text(), "os_family == \"RedHat\"");
  ASSERT_TRUE(nfs.creates.has_value());
  EXPECT_EQ(nfs.creates->text(), "/sbin/mount.nfs");
  EXPECT_EQ(nfs.timeout_s, kDefaultTaskTimeoutS);
  EXPECT_FALSE(nfs.become.has_value());
  EXPECT_EQ(nfs.where.ToString(), "pb.yaml:8:7: [0].tasks[0]");

  const Task& mount = play.tasks[1];
  EXPECT_EQ(mount.timeout_s, 120);
  EXPECT_EQ(mount.command.variables(), (std::vector<std::string>{"cfs_export", "cfs_mount"}));
  ASSERT_TRUE(mount.unless.has_value());

  EXPECT_EQ(play.tasks[2].action, ActionKind::kCommand);
  EXPECT_FALSE(play.tasks[2].changed_when);

  const Task& upload = play.tasks[3];
  EXPECT_EQ(upload.action, ActionKind::kCopy);
  EXPECT_TRUE(upload.copy.has_src);
  EXPECT_EQ(upload.copy.src.text(), "{{ agent_binary }}");
  EXPECT_EQ(upload.copy.dest.text(), "/usr/local/bin/coord-agent");
  EXPECT_EQ(upload.copy.mode, 0755);
  EXPECT_EQ(upload.become, false);

  const Task& conf = play.tasks[4];
  EXPECT_EQ(conf.name, "copy: /etc/coord/cfs.conf");  // the default name
  EXPECT_FALSE(conf.copy.has_src);
  EXPECT_EQ(conf.copy.content.text(), "cfs={{ cfs_mount }}\n");
  EXPECT_EQ(conf.copy.mode, 0644);
}

TEST(PlaybookParseTest, SeveralPlaysAndDefaultNames) {
  Playbook pb = ParseOk(R"(- hosts: all
  tasks:
    - shell: |
        echo a very long first line that goes on and on and on
        echo second
- hosts: all
  tasks: []
)");
  ASSERT_EQ(pb.plays.size(), 2u);
  EXPECT_EQ(pb.plays[0].tasks[0].name, "shell: echo a very long first line that goes...");
  EXPECT_TRUE(pb.plays[1].tasks.empty());
}

// Each bad input, and the exact message: position, path, what was expected.
struct BadCase {
  const char* what;
  const char* text;
  const char* message;
};

TEST(PlaybookParseTest, RejectsBadInputWithLocationAndPath) {
  const BadCase cases[] = {
      {"bad mode", R"(- hosts: all
  tasks:
    - name: Upload
      copy: {content: "x", dest: /etc/x, mode: rwx}
)",
       R"(pb.yaml:4:48: [0].tasks[0].copy.mode: expected an octal mode such as "0755", got "rwx")"},
      {"misspelt key", R"(- hosts: all
  tasks:
    - name: a
      shell: "true"
      becom: true
)",
       R"(pb.yaml:5:7: [0].tasks[0].becom: unknown key "becom" in a task (did you mean "become"?))"},
      {"unknown key far from any", R"(- hosts: all
  tasks:
    - name: a
      apt: nfs-common
)",
       "pb.yaml:4:7: [0].tasks[0].apt: unknown key \"apt\" in a task; expected one of: name, "
       "shell, command, copy, when, creates, unless, changed_when, become, timeout_s"},
      {"unknown play key", R"(- hosts: all
  gather_facts: false
  tasks: []
)",
       "pb.yaml:2:3: [0].gather_facts: unknown key \"gather_facts\" in a play; expected one of: "
       "name, hosts, become, vars, tasks"},
      {"empty action", R"(- hosts: all
  tasks:
    - name: a
      shell:
)",
       R"(pb.yaml:4:7: [0].tasks[0].shell: expected a string such as "systemctl restart coord-agent", got nothing)"},
      {"tab", "- hosts: all\n  tasks:\n  - name: a\n\tshell: x\n",
       "pb.yaml:4:1: YAML syntax error: illegal tab when looking for indentation"},
      {"a map, not a list", "hosts: all\ntasks: []\n",
       R"(pb.yaml:1:1: expected a list of plays, got a map; start each play with "- " (as in Ansible))"},
      {"two actions", R"(- hosts: all
  tasks:
    - name: a
      shell: x
      command: y
)",
       "pb.yaml:5:16: [0].tasks[0].command: a task has exactly one action and this one already "
       "has \"shell\"; split it into two tasks"},
      {"no action", R"(- hosts: all
  tasks:
    - name: a
      when: x
)",
       "pb.yaml:3:7: [0].tasks[0]: a task needs exactly one action: shell:, command: or copy:"},
      {"hosts other than all", R"(- hosts: gpu_nodes
  tasks: []
)",
       "pb.yaml:1:10: [0].hosts: expected \"all\" (the hosts file is the inventory; groups are "
       "not supported), got \"gpu_nodes\""},
      {"no hosts", "- tasks: []\n", "pb.yaml:1:3: [0]: a play needs hosts: all"},
      {"tasks not a list", "- hosts: all\n  tasks: {shell: x}\n",
       "pb.yaml:2:10: [0].tasks: expected a list of tasks (each starting with \"- \"), got a map"},
      {"bad timeout", R"(- hosts: all
  tasks:
    - shell: x
      timeout_s: 2m
)",
       "pb.yaml:4:18: [0].tasks[0].timeout_s: expected a whole number of seconds from 1 to 86400 "
       "such as 120, got \"2m\""},
      {"duplicate key", R"(- hosts: all
  tasks:
    - shell: x
      name: a
      name: b
)",
       "pb.yaml:5:7: [0].tasks[0].name: duplicate key \"name\""},
      {"copy without dest", R"(- hosts: all
  tasks:
    - copy: {content: x}
)",
       "pb.yaml:3:13: [0].tasks[0].copy: copy needs dest: (the absolute path on the host)"},
      {"copy with src and content", R"(- hosts: all
  tasks:
    - copy: {src: a, content: x, dest: /x}
)",
       "pb.yaml:3:13: [0].tasks[0].copy: copy takes src: or content:, not both"},
      {"relative dest", R"(- hosts: all
  tasks:
    - copy: {content: x, dest: etc/x}
)",
       "pb.yaml:3:32: [0].tasks[0].copy.dest: expected an absolute path on the host, got "
       "\"etc/x\""},
      {"creates on copy", R"(- hosts: all
  tasks:
    - copy: {content: x, dest: /x}
      creates: /x
)",
       "pb.yaml:4:16: [0].tasks[0].creates: creates applies to shell and command tasks, not copy "
       "(a copy already reports changed only when the file differs)"},
      {"become not a bool", "- hosts: all\n  become: maybe\n  tasks: []\n",
       "pb.yaml:2:11: [0].become: expected true or false, got \"maybe\""},
      {"bad when", R"(- hosts: all
  tasks:
    - shell: x
      when: os_family == RedHat
)",
       "pb.yaml:4:13: [0].tasks[0].when: at character 14: expected a quoted string after \"==\", "
       "got \"RedHat\" (quote it: \"RedHat\") in: os_family == RedHat"},
      {"unclosed template", R"(- hosts: all
  tasks:
    - shell: echo {{ name
)",
       "pb.yaml:3:14: [0].tasks[0].shell: \"{{\" at character 6 is not closed with \"}}\""},
      {"filter in template", R"(- hosts: all
  tasks:
    - shell: "echo {{ name | default('x') }}"
)",
       "pb.yaml:3:14: [0].tasks[0].shell: expected a variable name between \"{{\" and \"}}\" at "
       "character 6, got \"name | default('x')\" (only plain names such as {{ cfs_mount }}: no "
       "filters or expressions)"},
      {"nested var value", R"(- hosts: all
  vars:
    ports: [1, 2]
  tasks: []
)",
       "pb.yaml:3:12: [0].vars.ports: expected a scalar value (write \"\" for an empty string), "
       "got a list"},
      {"bad var name", R"(- hosts: all
  vars:
    cfs-mount: /mnt
  tasks: []
)",
       "pb.yaml:3:16: [0].vars.cfs-mount: a variable name is letters, digits and _ (not starting "
       "with a digit), got \"cfs-mount\""},
      {"empty list", "[]\n", "pb.yaml:1:1: expected at least one play"},
  };
  for (const BadCase& c : cases) {
    EXPECT_EQ(ParseError(c.text), c.message) << c.what;
  }
  EXPECT_EQ(ParseError(""), "pb.yaml: the playbook is empty; expected a list of plays");
  EXPECT_EQ(ParseError("- hosts: all\n  tasks: [\n"),
            "pb.yaml:3:1: YAML syntax error: end of sequence flow not found");
}

TEST(PlaybookParseTest, ModesAndBooleans) {
  for (auto [text, mode] : std::vector<std::pair<std::string, int>>{
           {"\"0755\"", 0755}, {"0600", 0600}, {"'644'", 0644}, {"\"4755\"", 04755}}) {
    Playbook pb =
        ParseOk("- hosts: all\n  tasks:\n    - copy: {content: x, dest: /x, mode: " + text + "}\n");
    ASSERT_EQ(pb.plays.size(), 1u) << text;
    EXPECT_EQ(pb.plays[0].tasks[0].copy.mode, mode) << text;
  }
  EXPECT_THAT(ParseError("- hosts: all\n  tasks:\n    - copy: {content: x, dest: /x, mode: 493}\n"),
              HasSubstr("got \"493\""));
  Playbook pb = ParseOk("- hosts: all\n  become: yes\n  tasks: [{shell: x, become: no}]\n");
  EXPECT_TRUE(pb.plays[0].become);
  EXPECT_EQ(pb.plays[0].tasks[0].become, false);
}

TEST(PlaybookParseTest, LoadReportsMissingFile) {
  StatusOr<Playbook> pb = LoadPlaybook("/nonexistent/dir/pb.yaml");
  ASSERT_FALSE(pb.ok());
  EXPECT_THAT(pb.status().message(), HasSubstr("/nonexistent/dir/pb.yaml"));
}

TEST(PlaybookVarsTest, VarsFileAndAssignments) {
  StatusOr<Vars> vars =
      ParseVarsFile("cfs_export: 10.0.0.5:/cfs\nport: 7071\nempty: \"\"\n", "vars.yaml");
  ASSERT_TRUE(vars.ok()) << vars.status().ToString();
  EXPECT_EQ(*vars, (Vars{{"cfs_export", "10.0.0.5:/cfs"}, {"port", "7071"}, {"empty", ""}}));
  StatusOr<Vars> bad = ParseVarsFile("a: 1\nb: {c: 2}\n", "vars.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), StartsWith("vars.yaml:2:4: b: expected a scalar value"));
  StatusOr<Vars> list = ParseVarsFile("- a\n", "vars.yaml");
  ASSERT_FALSE(list.ok());
  EXPECT_THAT(list.status().message(), StartsWith("vars.yaml:1:1: expected a map of variables"));
  EXPECT_TRUE(ParseVarsFile("", "vars.yaml").ok());

  Vars cli;
  ASSERT_TRUE(ParseVarAssignment("k=v=w", &cli).ok());
  ASSERT_TRUE(ParseVarAssignment("empty=", &cli).ok());
  EXPECT_EQ(cli, (Vars{{"k", "v=w"}, {"empty", ""}}));
  EXPECT_FALSE(ParseVarAssignment("novalue", &cli).ok());
  EXPECT_FALSE(ParseVarAssignment("bad-name=1", &cli).ok());
  EXPECT_FALSE(ParseVarAssignment("=1", &cli).ok());
}

// More bad input, each with the exact message: a wrong kind of node where a
// map or string belongs, out-of-range numbers, and keys misspelt inside copy.
TEST(PlaybookParseTest, RejectsWrongShapesAndRangesWithLocationAndPath) {
  const BadCase cases[] = {
      {"play is a scalar", "- all\n",
       "pb.yaml:1:3: [0]: expected a play (a map of keys), got a scalar"},
      {"task is a scalar", "- hosts: all\n  tasks:\n    - echo hi\n",
       "pb.yaml:3:7: [0].tasks[0]: expected a task (a map of keys), got a scalar"},
      {"copy is a scalar", "- hosts: all\n  tasks:\n    - copy: /etc/x\n",
       "pb.yaml:3:13: [0].tasks[0].copy: expected copy (a map of keys), got a scalar"},
      {"vars is a list", "- hosts: all\n  vars: [a]\n  tasks: []\n",
       "pb.yaml:2:9: [0].vars: expected vars (a map of keys), got a list"},
      {"name is a list", "- hosts: all\n  tasks:\n    - {name: [a], shell: x}\n",
       "pb.yaml:3:14: [0].tasks[0].name: expected a string such as \"Install NFS client\", got "
       "a list"},
      {"when is a list", "- hosts: all\n  tasks:\n    - {shell: x, when: [a, b]}\n",
       "pb.yaml:3:24: [0].tasks[0].when: expected a string such as 'os_family == \"Debian\"', "
       "got a list"},
      {"timeout zero", "- hosts: all\n  tasks:\n    - {shell: x, timeout_s: 0}\n",
       "pb.yaml:3:29: [0].tasks[0].timeout_s: expected a whole number of seconds from 1 to 86400 "
       "such as 120, got \"0\""},
      {"timeout over a day", "- hosts: all\n  tasks:\n    - {shell: x, timeout_s: 86401}\n",
       "pb.yaml:3:29: [0].tasks[0].timeout_s: expected a whole number of seconds from 1 to 86400 "
       "such as 120, got \"86401\""},
      {"negative timeout", "- hosts: all\n  tasks:\n    - {shell: x, timeout_s: -5}\n",
       "pb.yaml:3:29: [0].tasks[0].timeout_s: expected a whole number of seconds from 1 to 86400 "
       "such as 120, got \"-5\""},
      {"five-digit mode",
       "- hosts: all\n  tasks:\n    - copy: {content: x, dest: /x, mode: \"07555\"}\n",
       "pb.yaml:3:42: [0].tasks[0].copy.mode: expected an octal mode such as \"0755\", got "
       "\"07555\""},
      {"non-octal mode",
       "- hosts: all\n  tasks:\n    - copy: {content: x, dest: /x, mode: \"0855\"}\n",
       "pb.yaml:3:42: [0].tasks[0].copy.mode: expected an octal mode such as \"0755\", got "
       "\"0855\""},
      {"changed_when is a word",
       "- hosts: all\n  tasks:\n    - {shell: x, changed_when: sometimes}\n",
       "pb.yaml:3:32: [0].tasks[0].changed_when: expected true or false, got \"sometimes\""},
      {"misspelt copy key", "- hosts: all\n  tasks:\n    - copy: {content: x, dset: /x}\n",
       "pb.yaml:3:26: [0].tasks[0].copy.dset: unknown key \"dset\" in copy (did you mean "
       "\"dest\"?)"},
      {"copy's owner", "- hosts: all\n  tasks:\n    - copy: {content: x, dest: /x, owner: root}\n",
       "pb.yaml:3:36: [0].tasks[0].copy.owner: unknown key \"owner\" in copy; expected one of: "
       "src, content, dest, mode"},
      {"copy without src or content", "- hosts: all\n  tasks:\n    - copy: {dest: /x}\n",
       "pb.yaml:3:13: [0].tasks[0].copy: copy needs src: (a local file) or content: (text)"},
      {"unless on copy",
       "- hosts: all\n  tasks:\n    - copy: {content: x, dest: /x}\n      unless: \"true\"\n",
       "pb.yaml:4:15: [0].tasks[0].unless: unless applies to shell and command tasks, not copy "
       "(a copy already reports changed only when the file differs)"},
      {"bad template in a vars value", "- hosts: all\n  vars: {dir: \"{{ root\"}\n  tasks: []\n",
       "pb.yaml:2:15: [0].vars.dir: \"{{\" at character 1 is not closed with \"}}\""},
      {"duplicate play key", "- hosts: all\n  hosts: all\n  tasks: []\n",
       "pb.yaml:2:3: [0].hosts: duplicate key \"hosts\""},
  };
  for (const BadCase& c : cases) {
    EXPECT_EQ(ParseError(c.text), c.message) << c.what;
  }
  EXPECT_EQ(ParseError("# only a comment\n"),
            "pb.yaml: the playbook is empty; expected a list of plays");
}

// Vars files and --var: the same file:line:col prefix, or "--var name".
TEST(PlaybookVarsTest, BadVarsFilesAndAssignmentsSayWhere) {
  const std::pair<const char*, const char*> files[] = {
      {"cfs-mount: /mnt\n",
       "vars.yaml:1:12: cfs-mount: a variable name is letters, digits and _ (not starting with a "
       "digit), got \"cfs-mount\""},
      {"a: \"{{ x\"\n", "vars.yaml:1:4: a: \"{{\" at character 1 is not closed with \"}}\""},
      {"a: 1\na: 2\n", "vars.yaml:2:1: a: duplicate key \"a\""},
      {"a: [\n", "vars.yaml:2:1: YAML syntax error: end of sequence flow not found"},
      {"just text\n", "vars.yaml:1:1: expected a map of variables (name: value), got a scalar"},
  };
  for (const auto& [text, message] : files) {
    StatusOr<Vars> vars = ParseVarsFile(text, "vars.yaml");
    ASSERT_FALSE(vars.ok()) << text;
    EXPECT_EQ(vars.status().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_EQ(vars.status().message(), message) << text;
  }

  Vars cli = {{"kept", "1"}};
  Status st = ParseVarAssignment("cfs_mount", &cli);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(),
            "--var cfs_mount: expected name=value with a name of letters, digits and _, e.g. "
            "--var cfs_mount=/mnt/cfs");
  st = ParseVarAssignment("dir={{ root", &cli);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "--var dir: \"{{\" at character 1 is not closed with \"}}\"");
  EXPECT_EQ(cli, (Vars{{"kept", "1"}}));  // a rejected --var adds nothing
}

// Loading from disk: messages carry the path as given; copy's relative src
// paths are resolved against the playbook's directory (base_dir).
TEST(PlaybookLoadTest, LoadsFilesAndNamesThemInErrors) {
  coord::testing::TempDir dir;
  const std::string pb_path = dir.File("site.yaml");
  ASSERT_TRUE(coord::testing::WriteTextFile(
      pb_path, "- hosts: all\n  tasks:\n    - copy: {src: files/agent.conf, dest: /etc/a}\n"));
  StatusOr<Playbook> pb = LoadPlaybook(pb_path);
  ASSERT_TRUE(pb.ok()) << pb.status().ToString();
  EXPECT_EQ(pb->file, pb_path);
  EXPECT_EQ(pb->base_dir, dir.path());
  EXPECT_EQ(pb->plays[0].tasks[0].fields.at("copy.src").ToString(),
            pb_path + ":3:19: [0].tasks[0].copy.src");

  const std::string bad_path = dir.File("bad.yaml");
  ASSERT_TRUE(coord::testing::WriteTextFile(bad_path, "- hosts: all\n  tasks:\n    - shel: x\n"));
  StatusOr<Playbook> bad = LoadPlaybook(bad_path);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            bad_path +
                ":3:7: [0].tasks[0].shel: unknown key \"shel\" in a task (did you mean "
                "\"shell\"?)");

  const std::string vars_path = dir.File("vars.yaml");
  ASSERT_TRUE(coord::testing::WriteTextFile(vars_path, "cfs_export: 10.0.0.5:/cfs\n"));
  StatusOr<Vars> vars = LoadVarsFile(vars_path);
  ASSERT_TRUE(vars.ok()) << vars.status().ToString();
  EXPECT_EQ(*vars, (Vars{{"cfs_export", "10.0.0.5:/cfs"}}));
  ASSERT_TRUE(coord::testing::WriteTextFile(vars_path, "ports: [1, 2]\n"));
  vars = LoadVarsFile(vars_path);
  ASSERT_FALSE(vars.ok());
  EXPECT_THAT(vars.status().message(), StartsWith(vars_path + ":1:8: ports: expected a scalar"));

  StatusOr<Vars> missing = LoadVarsFile(dir.File("nope.yaml"));
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr(dir.File("nope.yaml")));
}

}  // namespace
}  // namespace coord::playbooks
