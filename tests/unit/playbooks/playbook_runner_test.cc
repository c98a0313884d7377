// Unit tests for the playbook runner (playbooks/runner/runner.h) on LocalHost:
// the inventory fakes hosts "a", "b", "c"... that each work in their own
// directory, {{ root }}/{{ inventory_hostname }}, under a fresh /tmp directory.
// Covers idempotence (second run changes nothing), check mode (filesystem
// untouched), failure isolation, max_fail_percent, copy by content and mode,
// unreachable hosts, task deadlines, undefined variables, become through a fake
// sudo (quoting, uploads, the password message), facts and variable precedence.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/fs.h"
#include "playbooks/runner/local_host.h"
#include "playbooks/runner/playbook_parser.h"
#include "playbooks/runner/runner.h"
#include "tests/support/temp_dir.h"

namespace coord::playbooks {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using O = TaskOutcome;

// path -> (mode, content) of every file and directory under a root.
using Snapshot = std::map<std::string, std::pair<int, std::string>>;

void TakeSnapshot(const std::string& dir, Snapshot* out) {
  StatusOr<std::vector<std::string>> names = ListDir(dir);
  ASSERT_TRUE(names.ok());
  for (const std::string& n : *names) {
    if (n == "pb.yaml") continue;  // rewritten by every run
    std::string p = JoinPath(dir, n);
    struct stat st;
    ASSERT_EQ(lstat(p.c_str(), &st), 0);
    if (S_ISDIR(st.st_mode)) {
      (*out)[p] = {static_cast<int>(st.st_mode & 07777), "<dir>"};
      TakeSnapshot(p, out);
    } else {
      (*out)[p] = {static_cast<int>(st.st_mode & 07777), *ReadFile(p)};
    }
  }
}

int ModeOf(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 07777) : -1;
}

std::vector<O> Outcomes(const HostResult& h) {
  std::vector<O> out;
  for (const TaskResult& t : h.tasks) out.push_back(t.outcome);
  return out;
}

class RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NE(root_, "/tmp") << "could not make a temporary directory"; }

  std::string HostDir(const std::string& host) const { return root_ + "/" + host; }

  std::vector<InventoryHost> Inventory(const std::vector<std::string>& names) {
    std::vector<InventoryHost> inv;
    for (const auto& n : names) {
      EXPECT_TRUE(MakeDirs(HostDir(n)).ok());
      inv.push_back(InventoryHost{n, "127.0.0.1", 22, "", {}});
    }
    return inv;
  }

  // LocalHost for every host, except the `unreachable` ones.
  static Connector LocalConnector(std::set<std::string> unreachable = {}) {
    return [unreachable](const InventoryHost& h) -> StatusOr<std::unique_ptr<RemoteHost>> {
      if (unreachable.count(h.name)) return Unavailable("connect to " + h.name + ": refused");
      return std::unique_ptr<RemoteHost>(new LocalHost(h.name));
    };
  }

  StatusOr<PlaybookResult> TryRun(const std::string& yaml, RunOptions options,
                                  const std::vector<InventoryHost>& inventory,
                                  const Connector& connector) {
    std::string file = root_ + "/pb.yaml";
    EXPECT_TRUE(WriteFileAtomic(file, yaml, false).ok());
    StatusOr<Playbook> pb = LoadPlaybook(file);
    if (!pb.ok()) return pb.status();
    options.vars.emplace("root", root_);
    return RunPlaybook(*pb, inventory, options, connector, nullptr);
  }

  PlaybookResult Run(const std::string& yaml, RunOptions options = {},
                     std::vector<InventoryHost> inventory = {},
                     const Connector& connector = LocalConnector()) {
    if (inventory.empty()) inventory = Inventory({"a", "b", "c"});
    StatusOr<PlaybookResult> r = TryRun(yaml, options, inventory, connector);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : PlaybookResult{};
  }

  // A fresh directory per test, removed with the fixture.
  coord::testing::TempDir tmp_;
  const std::string root_ = tmp_.path();
};

// Every kind of task, written to be idempotent.
constexpr char kIdempotent[] = R"(- name: Set up a fake node
  hosts: all
  vars:
    dir: "{{ root }}/{{ inventory_hostname }}"
  tasks:
    - name: Make the config directory
      shell: mkdir {{ dir }}/etc
      creates: "{{ dir }}/etc"
    - name: Write the marker
      shell: echo hi > {{ dir }}/marker
      unless: test -f {{ dir }}/marker
    - name: Config from content
      copy: {content: "host={{ inventory_hostname }}\n", dest: "{{ dir }}/etc/agent.conf", mode: "0640"}
    - name: Binary from a local file
      copy: {src: agent.bin, dest: "{{ dir }}/coord-agent", mode: "0755"}
    - name: Check the directory
      shell: test -d {{ dir }}/etc
      changed_when: false
    - name: Only on Plan 9
      shell: touch {{ dir }}/plan9
      when: os_family == "Plan9"
)";

TEST_F(RunnerTest, FirstRunChangesSecondRunReportsNoChange) {
  ASSERT_TRUE(WriteFileAtomic(root_ + "/agent.bin",
                              "\x7f"
                              "ELF fake binary",
                              false)
                  .ok());
  PlaybookResult first = Run(kIdempotent);
  ASSERT_EQ(first.hosts.size(), 3u);
  EXPECT_TRUE(RunSucceeded(first));
  for (const HostResult& h : first.hosts) {
    EXPECT_THAT(Outcomes(h), ElementsAre(O::kChanged, O::kChanged, O::kChanged, O::kChanged, O::kOk,
                                         O::kSkipped))
        << h.host;
    EXPECT_EQ(*ReadFile(HostDir(h.host) + "/etc/agent.conf"), "host=" + h.host + "\n");
    EXPECT_EQ(ModeOf(HostDir(h.host) + "/etc/agent.conf"), 0640);
    EXPECT_EQ(*ReadFile(HostDir(h.host) + "/coord-agent"),
              "\x7f"
              "ELF fake binary");
    EXPECT_EQ(ModeOf(HostDir(h.host) + "/coord-agent"), 0755);
    EXPECT_EQ(*ReadFile(HostDir(h.host) + "/marker"), "hi\n");
    EXPECT_FALSE(PathExists(HostDir(h.host) + "/plan9"));
    EXPECT_EQ(h.tasks[0].index, 1);
    EXPECT_EQ(h.tasks[0].total, 6);
    EXPECT_EQ(h.tasks[0].task, "Make the config directory");
  }
  EXPECT_THAT(first.hosts[0].tasks[5].message, HasSubstr("is false"));

  Snapshot before;
  TakeSnapshot(root_, &before);
  PlaybookResult second = Run(kIdempotent);
  for (const HostResult& h : second.hosts) {
    EXPECT_THAT(Outcomes(h), ElementsAre(O::kOk, O::kOk, O::kOk, O::kOk, O::kOk, O::kSkipped))
        << h.host;
  }
  EXPECT_THAT(second.hosts[1].tasks[0].message, HasSubstr("/b/etc exists"));
  EXPECT_EQ(second.hosts[1].tasks[1].message, "unless: the probe succeeded");
  Snapshot after;
  TakeSnapshot(root_, &after);
  EXPECT_EQ(before, after);
}

TEST_F(RunnerTest, CheckModeChangesNothingAndReportsWouldChange) {
  ASSERT_TRUE(WriteFileAtomic(root_ + "/agent.bin", "binary", false).ok());
  std::vector<InventoryHost> inv = Inventory({"a", "b"});
  // Host b is half done: its directory exists, so that probe says ok.
  ASSERT_TRUE(MakeDirs(HostDir("b") + "/etc").ok());
  Snapshot before;
  TakeSnapshot(root_, &before);
  RunOptions check;
  check.check = true;
  PlaybookResult r = Run(kIdempotent, check, inv);
  EXPECT_TRUE(r.check);
  EXPECT_THAT(Outcomes(r.hosts[0]), ElementsAre(O::kWouldChange, O::kWouldChange, O::kWouldChange,
                                                O::kWouldChange, O::kSkipped, O::kSkipped));
  EXPECT_THAT(Outcomes(r.hosts[1]), ElementsAre(O::kOk, O::kWouldChange, O::kWouldChange,
                                                O::kWouldChange, O::kSkipped, O::kSkipped));
  EXPECT_EQ(r.hosts[0].tasks[2].message, "created");
  EXPECT_EQ(r.hosts[0].tasks[4].message, "not run in check mode");
  Snapshot after;
  TakeSnapshot(root_, &after);
  EXPECT_EQ(before, after);  // nothing on the "hosts" changed

  Run(kIdempotent, {}, inv);
  PlaybookResult again = Run(kIdempotent, check, inv);
  for (const HostResult& h : again.hosts) {
    EXPECT_THAT(Outcomes(h), ElementsAre(O::kOk, O::kOk, O::kOk, O::kOk, O::kSkipped, O::kSkipped));
  }
}

TEST_F(RunnerTest, FailingTaskStopsThatHostOnly) {
  PlaybookResult r = Run(R"(- hosts: all
  tasks:
    - name: Fails on b
      shell: |
        if [ {{ inventory_hostname }} = b ]; then
          echo "some progress"
          for i in 1 2 3 4 5 6 7; do echo "noise $i" >&2; done
          echo "boom: disk full" >&2
          exit 3
        fi
    - name: Quiet failure on c
      shell: if [ {{ inventory_hostname }} = c ]; then echo "only stdout"; exit 1; fi
    - name: Touch
      shell: touch {{ root }}/{{ inventory_hostname }}/done
)");
  EXPECT_FALSE(RunSucceeded(r));
  EXPECT_FALSE(r.aborted_by_max_fail);
  EXPECT_TRUE(r.hosts[0].ok());
  EXPECT_THAT(Outcomes(r.hosts[0]), ElementsAre(O::kChanged, O::kChanged, O::kChanged));
  EXPECT_TRUE(PathExists(HostDir("a") + "/done"));

  const HostResult& b = r.hosts[1];
  EXPECT_TRUE(b.failed);
  EXPECT_THAT(Outcomes(b), ElementsAre(O::kFailed));  // later tasks never ran
  EXPECT_FALSE(PathExists(HostDir("b") + "/done"));
  // The exit status and the last lines of stderr (not stdout, not the whole thing).
  EXPECT_EQ(b.tasks[0].message,
            "exit status 3\nnoise 4\nnoise 5\nnoise 6\nnoise 7\nboom: disk full");

  const HostResult& c = r.hosts[2];
  EXPECT_THAT(Outcomes(c), ElementsAre(O::kChanged, O::kFailed));
  EXPECT_EQ(c.tasks[1].message, "exit status 1\nonly stdout");  // stderr was empty
  EXPECT_FALSE(PathExists(HostDir("c") + "/done"));
}

constexpr char kFailOnA[] = R"(- hosts: all
  tasks:
    - name: Fails on a
      shell: test {{ inventory_hostname }} != a
    - name: Touch
      shell: touch {{ root }}/{{ inventory_hostname }}/done
)";

TEST_F(RunnerTest, MaxFailPercentAbortsHostsNotYetStarted) {
  RunOptions opts;
  opts.forks = 1;              // hosts run one after another in inventory order
  opts.max_fail_percent = 20;  // 1 of 4 = 25% > 20%
  PlaybookResult r = Run(kFailOnA, opts, Inventory({"a", "b", "c", "d"}));
  EXPECT_TRUE(r.aborted_by_max_fail);
  EXPECT_FALSE(RunSucceeded(r));
  EXPECT_TRUE(r.hosts[0].failed);
  for (size_t i = 1; i < 4; ++i) {
    const HostResult& h = r.hosts[i];
    EXPECT_TRUE(h.aborted) << h.host;
    EXPECT_FALSE(h.failed) << h.host;
    ASSERT_EQ(h.tasks.size(), 1u);
    EXPECT_EQ(h.tasks[0].task, kStartStep);
    EXPECT_EQ(h.tasks[0].outcome, O::kAborted);
    EXPECT_THAT(h.tasks[0].message, HasSubstr("max_fail_percent=20%"));
    EXPECT_FALSE(PathExists(HostDir(h.host) + "/done"));
  }

  opts.max_fail_percent = 25;  // 25% does not exceed 25%
  r = Run(kFailOnA, opts, Inventory({"a", "b", "c", "d"}));
  EXPECT_FALSE(r.aborted_by_max_fail);
  for (size_t i = 1; i < 4; ++i) {
    EXPECT_TRUE(r.hosts[i].ok());
    EXPECT_TRUE(PathExists(HostDir(r.hosts[i].host) + "/done"));
  }
}

TEST_F(RunnerTest, MaxFailPercentStopsRunningHostsBeforeTheirNextTask) {
  RunOptions opts;
  opts.forks = 2;
  opts.max_fail_percent = 0;
  // a fails while b is inside its first task (a handshake through files, not
  // timing); b must then stop before its second task, and c never starts.
  PlaybookResult r = Run(R"(- hosts: all
  vars: {dir: "{{ root }}/{{ inventory_hostname }}"}
  tasks:
    - name: a fails while b runs
      shell: |
        if [ {{ inventory_hostname }} = a ]; then
          while [ ! -e {{ root }}/b/started ]; do sleep 0.01; done
          touch {{ dir }}/failing
          exit 1
        fi
        touch {{ dir }}/started
        while [ ! -e {{ root }}/a/failing ]; do sleep 0.01; done
        sleep 0.3
      timeout_s: 20
    - name: Touch
      shell: touch {{ dir }}/done
)",
                         opts);
  EXPECT_TRUE(r.aborted_by_max_fail);
  EXPECT_THAT(Outcomes(r.hosts[0]), ElementsAre(O::kFailed));
  ASSERT_THAT(Outcomes(r.hosts[1]), ElementsAre(O::kChanged, O::kAborted));
  EXPECT_EQ(r.hosts[1].tasks[1].task, "Touch");
  EXPECT_TRUE(r.hosts[1].aborted);
  EXPECT_THAT(Outcomes(r.hosts[2]), ElementsAre(O::kAborted));
  EXPECT_FALSE(PathExists(HostDir("b") + "/done"));
}

TEST_F(RunnerTest, CopyIsIdempotentByContentAndMode) {
  constexpr char kCopy[] = R"(- hosts: all
  vars: {text: "v1"}
  tasks:
    - copy: {content: "{{ text }}\n", dest: "{{ root }}/{{ inventory_hostname }}/f"}
)";
  std::vector<InventoryHost> inv = Inventory({"a"});
  std::string f = HostDir("a") + "/f";
  auto outcome = [&](RunOptions o = {}) {
    PlaybookResult r = Run(kCopy, o, inv);
    return r.hosts.empty() || r.hosts[0].tasks.empty() ? TaskResult{} : r.hosts[0].tasks[0];
  };
  EXPECT_EQ(outcome().outcome, O::kChanged);
  EXPECT_EQ(ModeOf(f), 0644);  // the default mode
  EXPECT_EQ(outcome().outcome, O::kOk);

  ASSERT_EQ(chmod(f.c_str(), 0600), 0);
  TaskResult t = outcome();
  EXPECT_EQ(t.outcome, O::kChanged);
  EXPECT_EQ(t.message, "mode 0600 -> 0644");
  EXPECT_EQ(ModeOf(f), 0644);

  ASSERT_TRUE(WriteFileAtomic(f, "v0\n", false).ok());
  ASSERT_EQ(chmod(f.c_str(), 0644), 0);
  RunOptions check;
  check.check = true;
  t = outcome(check);
  EXPECT_EQ(t.outcome, O::kWouldChange);
  EXPECT_EQ(t.message, "content differs");
  EXPECT_EQ(*ReadFile(f), "v0\n");
  t = outcome();
  EXPECT_EQ(t.outcome, O::kChanged);
  EXPECT_EQ(t.message, "content differs");
  EXPECT_EQ(*ReadFile(f), "v1\n");

  // --var outranks the play's vars.
  RunOptions cli;
  cli.vars["text"] = "v2";
  EXPECT_EQ(outcome(cli).outcome, O::kChanged);
  EXPECT_EQ(*ReadFile(f), "v2\n");

  ASSERT_EQ(unlink(f.c_str()), 0);
  ASSERT_TRUE(MakeDirs(f).ok());
  t = outcome();
  EXPECT_EQ(t.outcome, O::kFailed);
  EXPECT_THAT(t.message, HasSubstr("is a directory"));

  PlaybookResult missing = Run(R"(- hosts: all
  tasks: [{copy: {src: no-such-file, dest: "{{ root }}/x"}}]
)",
                               {}, inv);
  EXPECT_EQ(missing.hosts[0].tasks[0].outcome, O::kFailed);
  EXPECT_THAT(missing.hosts[0].tasks[0].message,
              StartsWith("copy.src: open " + root_ + "/no-such-file"));
}

TEST_F(RunnerTest, UnreachableHostDoesNotStopTheOthers) {
  PlaybookResult r = Run(kFailOnA, {}, Inventory({"b", "c", "d"}), LocalConnector({"c"}));
  EXPECT_FALSE(RunSucceeded(r));
  const HostResult& c = r.hosts[1];
  EXPECT_TRUE(c.unreachable);
  EXPECT_FALSE(c.failed);
  ASSERT_EQ(c.tasks.size(), 1u);
  EXPECT_EQ(c.tasks[0].task, kConnectStep);
  EXPECT_EQ(c.tasks[0].outcome, O::kUnreachable);
  EXPECT_EQ(c.tasks[0].message, "connect to c: refused");
  EXPECT_TRUE(c.facts.empty());
  EXPECT_TRUE(r.hosts[0].ok());
  EXPECT_TRUE(r.hosts[2].ok());
  EXPECT_TRUE(PathExists(HostDir("d") + "/done"));
}

TEST_F(RunnerTest, TaskDeadlineKillsTheCommand) {
  auto t0 = std::chrono::steady_clock::now();
  PlaybookResult r = Run(R"(- hosts: all
  tasks:
    - name: Hangs
      shell: echo $$ > {{ root }}/{{ inventory_hostname }}/pid; sleep 60
      timeout_s: 1
    - shell: touch {{ root }}/{{ inventory_hostname }}/done
)",
                         {}, Inventory({"a"}));
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(elapsed, 10.0);
  const TaskResult& t = r.hosts[0].tasks[0];
  EXPECT_EQ(t.outcome, O::kFailed);
  EXPECT_THAT(t.message, StartsWith("deadline exceeded (timeout_s: 1): the command did not "
                                    "finish within "));
  EXPECT_GE(t.seconds, 0.9);
  EXPECT_EQ(r.hosts[0].tasks.size(), 1u);
  EXPECT_FALSE(PathExists(HostDir("a") + "/done"));
  pid_t pid = std::stoi(*ReadFile(HostDir("a") + "/pid"));
  EXPECT_NE(kill(pid, 0), 0) << "the task's shell survived its deadline";
}

TEST_F(RunnerTest, UndefinedVariables) {
  // Defined nowhere: the whole run is refused before anything starts.
  StatusOr<PlaybookResult> r = TryRun(R"(- hosts: all
  tasks:
    - name: Mount
      shell: mount {{ cfs_export }} /mnt
)",
                                      {}, Inventory({"a"}), LocalConnector());
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("pb.yaml:4:14: [0].tasks[0].shell (task \"Mount\"): "
                                              "undefined variable \"cfs_export\""));

  // Defined for some hosts only (host vars): the others fail at that task.
  std::vector<InventoryHost> inv = Inventory({"a", "b"});
  inv[0].vars["cfs_export"] = "nfs:/a";
  PlaybookResult run = Run(R"(- hosts: all
  tasks:
    - name: Record the export
      shell: echo {{ cfs_export }} > {{ root }}/{{ inventory_hostname }}/export
)",
                           {}, inv);
  EXPECT_EQ(*ReadFile(HostDir("a") + "/export"), "nfs:/a\n");
  ASSERT_EQ(run.hosts[1].tasks.size(), 1u);
  EXPECT_EQ(run.hosts[1].tasks[0].task, "Record the export");
  EXPECT_EQ(run.hosts[1].tasks[0].outcome, O::kFailed);
  EXPECT_EQ(run.hosts[1].tasks[0].message, "shell: undefined variable \"cfs_export\"");
}

TEST_F(RunnerTest, VariablePrecedenceAndFacts) {
  std::vector<InventoryHost> inv = Inventory({"a"});
  inv[0].vars = {
      {"v1", "host"}, {"v2", "host"}, {"v3", "host"}, {"v4", "host"}, {"arch", "host-arch"}};
  RunOptions opts;
  opts.vars = {{"v1", "cli"}};
  opts.vars_file = {{"v1", "file"}, {"v2", "file"}};
  PlaybookResult r = Run(R"(- hosts: all
  vars: {v1: play, v2: play, v3: play}
  tasks:
    - shell: >-
        echo "{{ v1 }} {{ v2 }} {{ v3 }} {{ v4 }} {{ arch }} {{ user_id }} {{ has_systemd }}
        {{ inventory_hostname }} {{ os_family }}" > {{ root }}/a/out
)",
                         opts, inv);
  ASSERT_TRUE(RunSucceeded(r));
  std::string uid = std::to_string(getuid());
  const Vars& f = r.hosts[0].facts;
  EXPECT_EQ(f.at("user_id"), uid);
  EXPECT_EQ(f.at("inventory_hostname"), "a");
  EXPECT_FALSE(f.at("arch").empty());
  EXPECT_TRUE(f.at("has_systemd") == "true" || f.at("has_systemd") == "false");
  EXPECT_EQ(f.count("os_family"), 1u);
  EXPECT_EQ(f.count("distribution"), 1u);
  EXPECT_EQ(f.count("distribution_version"), 1u);
  EXPECT_EQ(*ReadFile(HostDir("a") + "/out"), "cli file play host host-arch " + uid + " " +
                                                  f.at("has_systemd") + " a " + f.at("os_family") +
                                                  "\n");
}

TEST(FactsTest, ParsesOsReleaseIntoAnsibleFamilies) {
  StatusOr<Vars> facts = ParseFacts(
      "arch=x86_64\nuser_id=1000\nhas_systemd=true\n--- os-release\n"
      "NAME=\"Rocky Linux\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\n"
      "PRETTY_NAME=\"Rocky Linux 9.3 (Blue Onyx)\"\n");
  ASSERT_TRUE(facts.ok()) << facts.status().ToString();
  EXPECT_EQ(*facts, (Vars{{"arch", "x86_64"},
                          {"user_id", "1000"},
                          {"has_systemd", "true"},
                          {"distribution", "rocky"},
                          {"distribution_version", "9.3"},
                          {"os_family", "RedHat"}}));
  EXPECT_FALSE(ParseFacts("arch=x86_64\n").ok());

  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"debian", "", "Debian"},
      {"ubuntu", "debian", "Debian"},
      {"tencentos", "rhel fedora centos", "RedHat"},
      {"opencloudos", "rhel fedora", "RedHat"},
      {"almalinux", "rhel centos fedora", "RedHat"},
      {"opensuse-leap", "suse opensuse", "Suse"},
      {"sles", "", "Suse"},
      {"arch", "", "Archlinux"},
      {"somethingnew", "ubuntu debian", "Debian"},
      {"alpine", "", "other"},
      {"", "", "other"},
  };
  for (const auto& [id, like, family] : cases) EXPECT_EQ(OsFamily(id, like), family) << id;
}

TEST(ShellQuoteTest, NastyStringsSurviveTheShell) {
  LocalHost host("local");
  const std::vector<std::string> nasty = {"",          "plain",    "it's",       "'",
                                          "''",        "a\"b\"c",  "$HOME",      "${PATH}",
                                          "`id`",      "$(id -u)", "a\nb\n",     "back\\slash\\",
                                          "tab\there", "*",        "; rm -rf /", "!bang",
                                          "--x",       "a b  c",   "'\\''",      "\"'$`\\\n'\"",
                                          "ünïcødé",   "%s%n",     "-n",         "x=1 y=2"};
  for (const std::string& s : nasty) {
    StatusOr<CommandResult> r =
        host.Run("printf '%s' " + ShellQuote(s), std::chrono::milliseconds(5000));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->ok()) << s;
    EXPECT_EQ(r->stdout_text, s);
  }
  EXPECT_EQ(ShellQuote("it's"), "'it'\\''s'");
  EXPECT_EQ(BecomeCommand("echo 'x'"), "sudo -n /bin/sh -c 'echo '\\''x'\\'''");
}

// ---------------------------------------------------------------------------
// become, through a fake sudo on PATH and a host that claims to be uid 1000

constexpr char kFakeSudo[] =
    "#!/bin/sh\n"
    "# like sudo -n for a user with NOPASSWD: insists on -n, then runs the rest\n"
    "[ \"$1\" = -n ] || { echo 'fake sudo: expected -n' >&2; exit 97; }\n"
    "shift\n"
    "exec \"$@\"\n";
constexpr char kSudoWantsPassword[] =
    "#!/bin/sh\n"
    "echo 'sudo: a password is required' >&2\n"
    "exit 1\n";

// Runs on LocalHost with `bin_dir` first on PATH; says the user is uid 1000;
// records every command and upload.
class NonRootHost : public RemoteHost {
 public:
  NonRootHost(std::string bin_dir, std::vector<std::string>* log)
      : local_("a"), bin_dir_(std::move(bin_dir)), log_(log) {}
  const std::string& name() const override { return local_.name(); }
  StatusOr<CommandResult> Run(const std::string& command,
                              std::chrono::milliseconds timeout) override {
    if (command == FactsCommand()) {
      StatusOr<CommandResult> r = local_.Run(command, timeout);
      if (r.ok()) {
        size_t at = r->stdout_text.find("user_id=");
        size_t end = r->stdout_text.find('\n', at);
        r->stdout_text.replace(at, end - at, "user_id=1000");
      }
      return r;
    }
    log_->push_back(command);
    return local_.Run("PATH=" + ShellQuote(bin_dir_) + ":\"$PATH\"; " + command, timeout);
  }
  Status Upload(const std::string& content, const std::string& path, int mode,
                std::chrono::milliseconds timeout) override {
    char buf[16];
    snprintf(buf, sizeof(buf), "%04o", mode);
    log_->push_back("upload " + path + " " + buf);
    return local_.Upload(content, path, mode, timeout);
  }

 private:
  LocalHost local_;
  std::string bin_dir_;
  std::vector<std::string>* log_;
};

class BecomeTest : public RunnerTest {
 protected:
  Connector NonRootConnector(const char* sudo_script) {
    std::string bin = root_ + "/bin";
    EXPECT_TRUE(MakeDirs(bin).ok());
    EXPECT_TRUE(WriteFileAtomic(bin + "/sudo", sudo_script, false).ok());
    EXPECT_EQ(chmod((bin + "/sudo").c_str(), 0755), 0);
    return [this, bin](const InventoryHost&) -> StatusOr<std::unique_ptr<RemoteHost>> {
      return std::unique_ptr<RemoteHost>(new NonRootHost(bin, &log_));
    };
  }
  std::vector<std::string> log_;
};

TEST_F(BecomeTest, WrapsCommandsAndUploadsForNonRootUsers) {
  std::vector<InventoryHost> inv = Inventory({"a"});
  PlaybookResult r = Run(R"(- hosts: all
  become: true
  tasks:
    - name: Quotes and dollars
      shell: echo "it's $((6 * 7)) `echo ok`" > {{ root }}/a/out
    - name: Not as root
      shell: "true"
      become: false
    - name: Installed file
      copy: {content: "secret\n", dest: "{{ root }}/a/conf", mode: "0600"}
)",
                         {}, inv, NonRootConnector(kFakeSudo));
  ASSERT_TRUE(RunSucceeded(r)) << (r.hosts.empty() ? "" : r.hosts[0].tasks.back().message);
  EXPECT_EQ(r.hosts[0].facts.at("user_id"), "1000");
  EXPECT_EQ(*ReadFile(HostDir("a") + "/out"), "it's 42 ok\n");
  EXPECT_EQ(*ReadFile(HostDir("a") + "/conf"), "secret\n");
  EXPECT_EQ(ModeOf(HostDir("a") + "/conf"), 0600);

  ASSERT_EQ(log_.size(), 5u);
  EXPECT_EQ(log_[0], BecomeCommand("echo \"it's $((6 * 7)) `echo ok`\" > " + root_ + "/a/out"));
  EXPECT_EQ(log_[1], "true");
  EXPECT_THAT(log_[2], StartsWith("sudo -n /bin/sh -c 'p='\\''" + root_ + "/a/conf'\\''"));
  // A non-root copy: a private temp file, then root installs it with the mode.
  EXPECT_THAT(log_[3], StartsWith("upload /tmp/.coord-upload-"));
  EXPECT_THAT(log_[3], HasSubstr(" 0600"));
  std::string tmp = log_[3].substr(7, log_[3].find(' ', 7) - 7);
  EXPECT_EQ(log_[4], BecomeCommand("install -m 0600 '" + tmp + "' '" + root_ + "/a/conf'") +
                         "; rc=$?; rm -f '" + tmp + "'; exit $rc");
  EXPECT_FALSE(PathExists(tmp));
}

TEST_F(BecomeTest, SaysWhenSudoWantsAPassword) {
  PlaybookResult r = Run(R"(- hosts: all
  become: true
  tasks:
    - name: Needs root
      shell: "true"
      unless: test -e /nonexistent
)",
                         {}, Inventory({"a"}), NonRootConnector(kSudoWantsPassword));
  ASSERT_EQ(r.hosts[0].tasks.size(), 1u);
  const TaskResult& t = r.hosts[0].tasks[0];
  EXPECT_EQ(t.outcome, O::kFailed);
  EXPECT_EQ(t.message,
            "unless probe: exit status 1; sudo wants a password for this user (sudo -n cannot ask "
            "for one): give the user password-less sudo (NOPASSWD) or connect as root\n"
            "sudo: a password is required");
}

TEST_F(RunnerTest, RejectsBadOptionsAndInventories) {
  const char* pb = "- hosts: all\n  tasks: []\n";
  RunOptions opts;
  opts.forks = 0;
  EXPECT_FALSE(TryRun(pb, opts, Inventory({"a"}), LocalConnector()).ok());
  opts.forks = 1;
  opts.max_fail_percent = 101;
  EXPECT_FALSE(TryRun(pb, opts, Inventory({"a"}), LocalConnector()).ok());
  EXPECT_FALSE(TryRun(pb, {}, {}, LocalConnector()).ok());
  StatusOr<PlaybookResult> dup = TryRun(pb, {}, Inventory({"a", "a"}), LocalConnector());
  ASSERT_FALSE(dup.ok());
  EXPECT_THAT(dup.status().message(), HasSubstr("\"a\" is twice"));
}

}  // namespace
}  // namespace coord::playbooks
