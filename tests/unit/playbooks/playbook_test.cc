// Unit tests for the playbook parser (playbooks/runner/playbook.h): the
// documented example, every kind of rejected input with its file:line:col and
// document path, {{ }} templates, the `when` language, the variable scope and
// load-time checks of undefined variables. Pure: no files, no processes.
#include "playbooks/runner/playbook.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "playbooks/runner/playbook_parser.h"
#include "playbooks/runner/var_scope.h"

namespace coord::playbooks {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kFile[] = "pb.yaml";

Playbook ParseOk(const std::string& text) {
  StatusOr<Playbook> pb = ParsePlaybook(text, kFile);
  EXPECT_TRUE(pb.ok()) << pb.status().ToString();
  return pb.ok() ? *pb : Playbook{};
}

std::string ParseError(const std::string& text) {
  StatusOr<Playbook> pb = ParsePlaybook(text, kFile);
  EXPECT_FALSE(pb.ok()) << "parsed without error:\n" << text;
  if (pb.ok()) return "";
  EXPECT_EQ(pb.status().code(), StatusCode::kInvalidArgument);
  return pb.status().message();
}

// The example of playbook.h's header, as a user would write it.
constexpr char kExample[] = R"(# A playbook is a list of plays.
- name: Prepare an HCC node
  hosts: all
  become: true
  vars:
    cfs_mount: /mnt/cfs
  tasks:
    - name: Install NFS client
      shell: yum install -y nfs-utils
      when: os_family == "RedHat"
      creates: /sbin/mount.nfs
    - name: Mount the CFS export
      shell: mount -t nfs -o vers=4.0,noresvport {{ cfs_export }} {{ cfs_mount }}
      unless: mountpoint -q {{ cfs_mount }}
      timeout_s: 120
    - name: Check the driver
      command: nvidia-smi -L
      changed_when: false
    - name: Upload the agent
      copy: {src: "{{ agent_binary }}", dest: /usr/local/bin/coord-agent, mode: "0755"}
      become: false
    - copy:
        content: "cfs={{ cfs_mount }}\n"
        dest: /etc/coord/cfs.conf
)";

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

// ---------------------------------------------------------------------------
// Templates

VarLookup MapLookup(const Vars& vars) {
  return [vars](const std::string& name) -> StatusOr<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return NotFound("undefined variable \"" + name + "\"");
    return it->second;
  };
}

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

// ---------------------------------------------------------------------------
// Conditions

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

// ---------------------------------------------------------------------------
// Variables: scope, files, --var, load-time checks

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

TEST(VarsTest, VarsFileAndAssignments) {
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

TEST(CheckVariablesTest, UndefinedNamesAreCaughtAtLoadTime) {
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

}  // namespace
}  // namespace coord::playbooks
