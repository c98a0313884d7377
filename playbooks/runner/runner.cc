// The playbook runner (see runner.h): the host pool, the per-host task loop,
// what each action and probe sends to the host, facts and become. Everything a
// host sees is a /bin/sh command line or an Upload, so the SSH transport and
// LocalHost behave the same.
#include "playbooks/runner/runner.h"

#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "common/fs.h"
#include "playbooks/runner/report.h"
#include "playbooks/runner/var_scope.h"
#include "common/strings.h"

namespace coord::playbooks {

namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}


bool Contains(const std::string& haystack, const char* needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string Octal(int mode) {
  char buf[16];
  snprintf(buf, sizeof(buf), "%04o", mode);
  return buf;
}

// The last `max_lines` non-empty lines, each cut to 300 characters, indented
// by nothing (the reporter indents).
std::string Tail(const std::string& text, size_t max_lines) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!Trim(line).empty())
      lines.push_back(line.size() > 300 ? line.substr(0, 300) + "..." : line);
  }
  size_t first = lines.size() > max_lines ? lines.size() - max_lines : 0;
  std::string out;
  for (size_t i = first; i < lines.size(); ++i) out += (out.empty() ? "" : "\n") + lines[i];
  return out;
}

struct OutcomeInfo {
  TaskOutcome outcome;
  const char* name;  // for people
  const char* key;   // for JSON
};
constexpr OutcomeInfo kOutcomes[kTaskOutcomeCount] = {
    {TaskOutcome::kOk, "ok", "ok"},
    {TaskOutcome::kChanged, "changed", "changed"},
    {TaskOutcome::kWouldChange, "would change", "would_change"},
    {TaskOutcome::kSkipped, "skipped", "skipped"},
    {TaskOutcome::kFailed, "failed", "failed"},
    {TaskOutcome::kUnreachable, "unreachable", "unreachable"},
    {TaskOutcome::kAborted, "aborted", "aborted"},
};

}  // namespace

const char* TaskOutcomeName(TaskOutcome o) { return kOutcomes[static_cast<int>(o)].name; }
const char* TaskOutcomeKey(TaskOutcome o) { return kOutcomes[static_cast<int>(o)].key; }

OutcomeCounts CountOutcomes(const HostResult& host) {
  OutcomeCounts c;
  for (const TaskResult& t : host.tasks) ++c[t.outcome];
  return c;
}

bool RunSucceeded(const PlaybookResult& result) {
  return !result.aborted_by_max_fail && std::all_of(result.hosts.begin(), result.hosts.end(),
                                                    [](const HostResult& h) { return h.ok(); });
}

// ---------------------------------------------------------------------------
// Shell pieces, facts, hashing

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string BecomeCommand(const std::string& command) {
  return "sudo -n /bin/sh -c " + ShellQuote(command);
}

const std::string& FactsCommand() {
  // Read-only and needs no root; os-release is parsed here, not sourced there.
  static const std::string cmd =
      "echo \"arch=$(uname -m)\"; echo \"user_id=$(id -u)\"; "
      "if [ -d /run/systemd/system ]; then echo has_systemd=true; else echo has_systemd=false; fi; "
      "echo '--- os-release'; "
      "cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null; exit 0";
  return cmd;
}

namespace {

// os-release values are shell-quoted: "..." (with \ escapes) or '...' or bare.
std::string UnquoteOsRelease(std::string v) {
  if (v.size() >= 2 && v.front() == '\'' && v.back() == '\'') return v.substr(1, v.size() - 2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
    std::string out;
    for (size_t i = 1; i + 1 < v.size(); ++i) {
      if (v[i] == '\\' && i + 2 < v.size()) ++i;
      out += v[i];
    }
    return out;
  }
  return v;
}

// Ansible's os_family names for os-release IDs (ID first, then each ID_LIKE).
struct FamilyRule {
  const char* family;
  std::vector<std::string> ids;
};
const std::vector<FamilyRule>& FamilyRules() {
  static const std::vector<FamilyRule> rules = {
      {"RedHat",
       {"rhel", "centos", "fedora", "rocky", "almalinux", "ol", "amzn", "tencentos", "opencloudos",
        "anolis", "alinux", "euleros", "openeuler", "cloudlinux", "virtuozzo", "eurolinux",
        "scientific"}},
      {"Debian",
       {"debian", "ubuntu", "raspbian", "neon", "linuxmint", "devuan", "kali", "pop", "deepin",
        "uos"}},
      {"Suse",
       {"suse", "sles", "sled", "sles_sap", "opensuse", "opensuse-leap", "opensuse-tumbleweed"}},
      {"Archlinux", {"arch", "archarm", "manjaro", "endeavouros", "antergos"}},
  };
  return rules;
}

}  // namespace

std::string OsFamily(const std::string& id, const std::string& id_like) {
  std::vector<std::string> candidates = {id};
  std::istringstream words(id_like);
  for (std::string w; words >> w;) candidates.push_back(w);
  for (const std::string& c : candidates) {
    for (const FamilyRule& rule : FamilyRules()) {
      if (std::find(rule.ids.begin(), rule.ids.end(), c) != rule.ids.end()) return rule.family;
    }
  }
  return "other";
}

StatusOr<Vars> ParseFacts(const std::string& output) {
  Vars facts, os;
  bool in_os_release = false;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    if (line == "--- os-release") {
      in_os_release = true;
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = Trim(line.substr(0, eq));
    std::string value = Trim(line.substr(eq + 1));
    if (in_os_release) {
      os[key] = UnquoteOsRelease(value);
    } else {
      facts[key] = value;
    }
  }
  for (const char* key : {"arch", "user_id", "has_systemd"}) {
    if (facts[key].empty()) {
      return Internal(std::string("no ") + key + " in the facts output: " + Tail(output, 3));
    }
  }
  facts["distribution"] = os["ID"];
  facts["distribution_version"] = os["VERSION_ID"];
  facts["os_family"] = OsFamily(os["ID"], os["ID_LIKE"]);
  return facts;
}

std::string Sha256Hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

// ---------------------------------------------------------------------------
// One run's shared state

namespace {

struct LocalFile {
  std::string content;
  std::string sha256;
};

// copy's src files, read and hashed once per run however many hosts get them.
class LocalFiles {
 public:
  StatusOr<std::shared_ptr<const LocalFile>> Get(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = files_.find(path);
    if (it != files_.end()) return it->second;
    ASSIGN_OR_RETURN(std::string content, ReadFile(path));
    auto file = std::make_shared<LocalFile>();
    file->sha256 = Sha256Hex(content);
    file->content = std::move(content);
    files_[path] = file;
    return std::shared_ptr<const LocalFile>(file);
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<const LocalFile>> files_;  // guarded by mu_
};

class RunState {
 public:
  RunState(int total_hosts, int max_fail_percent)
      : total_hosts_(total_hosts), max_fail_percent_(max_fail_percent) {}
  bool aborted() const { return abort_.load(); }
  // Ansible's max_fail_percentage: abort once failed/total exceeds it.
  void HostFailed() {
    int failed = ++failed_hosts_;
    if (failed * 100 > max_fail_percent_ * total_hosts_) abort_ = true;
  }
  std::string AbortMessage() const {
    return "aborted: more than max_fail_percent=" + std::to_string(max_fail_percent_) +
           "% of the " + std::to_string(total_hosts_) + " hosts failed";
  }
  LocalFiles files;

 private:
  const int total_hosts_;
  const int max_fail_percent_;
  std::atomic<int> failed_hosts_{0};
  std::atomic<bool> abort_{false};
};

// "exit status 2" + hints + the output's last lines (stderr, else stdout).
std::string DescribeFailure(const CommandResult& r, bool become) {
  std::string msg = r.exit_signal.empty() ? "exit status " + std::to_string(r.exit_status)
                                          : "killed by signal " + r.exit_signal;
  if (become && Contains(r.stderr_text, "a password is required")) {
    msg +=
        "; sudo wants a password for this user (sudo -n cannot ask for one): give the "
        "user password-less sudo (NOPASSWD) or connect as root";
  } else if (become && (Contains(r.stderr_text, "sudo: not found") ||
                        Contains(r.stderr_text, "sudo: command not found"))) {
    msg += "; sudo is not installed on the host: install it or connect as root";
  }
  std::string tail = Tail(Trim(r.stderr_text).empty() ? r.stdout_text : r.stderr_text, 5);
  return tail.empty() ? msg : msg + "\n" + tail;
}

struct Verdict {
  TaskOutcome outcome;
  std::string message;
};

// ---------------------------------------------------------------------------
// One task on one host

class TaskRun {
 public:
  TaskRun(RemoteHost* host, const Task& task, VarLookup vars, bool become, const RunOptions& opts,
          const std::string& base_dir, LocalFiles* files)
      : host_(host),
        task_(task),
        vars_(std::move(vars)),
        become_(become),
        check_(opts.check),
        base_dir_(base_dir),
        files_(files),
        deadline_(Clock::now() + std::chrono::seconds(task.timeout_s)) {}

  Verdict Run() {
    if (task_.when) {
      StatusOr<bool> yes = task_.when->Evaluate(vars_);
      if (!yes.ok()) return {TaskOutcome::kFailed, "when: " + yes.status().message()};
      if (!*yes) return {TaskOutcome::kSkipped, "when: " + task_.when->text() + " is false"};
    }
    return task_.action == ActionKind::kCopy ? Copy() : Shell();
  }

 private:
  StatusOr<std::string> Render(const Template& t, const char* field) {
    StatusOr<std::string> s = t.Render(vars_);
    if (!s.ok()) return Status(s.status().code(), std::string(field) + ": " + s.status().message());
    return s;
  }

  // As the task's user: through sudo when become applies (runner decides).
  StatusOr<CommandResult> Exec(const std::string& command) {
    return ExecRaw(become_ ? BecomeCommand(command) : command);
  }

  StatusOr<CommandResult> ExecRaw(const std::string& command) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
    if (left.count() <= 0) return DeadlineExceeded("no time left for the next command");
    return host_->Run(command, left);
  }

  Verdict TransportFailure(const Status& st, const std::string& what) {
    std::string prefix = what.empty() ? "" : what + ": ";
    if (st.code() == StatusCode::kUnavailable) {
      return {TaskOutcome::kUnreachable, prefix + st.message()};
    }
    if (st.code() == StatusCode::kDeadlineExceeded) {
      return {TaskOutcome::kFailed, prefix + "deadline exceeded (timeout_s: " +
                                        std::to_string(task_.timeout_s) + "): " + st.message()};
    }
    return {TaskOutcome::kFailed, prefix + st.ToString()};
  }

  std::string CommandFailure(const CommandResult& r) { return DescribeFailure(r, become_); }

  Verdict Shell() {
    StatusOr<std::string> command = Render(task_.command, ActionKindName(task_.action));
    if (!command.ok()) return {TaskOutcome::kFailed, command.status().message()};
    if (task_.creates) {
      StatusOr<std::string> path = Render(*task_.creates, "creates");
      if (!path.ok()) return {TaskOutcome::kFailed, path.status().message()};
      StatusOr<CommandResult> r =
          Exec("if [ -e " + ShellQuote(*path) + " ]; then echo present; else echo absent; fi");
      if (!r.ok()) return TransportFailure(r.status(), "creates probe");
      std::string answer = Trim(r->stdout_text);
      if (r->ok() && answer == "present") {
        return {TaskOutcome::kOk, "creates: " + *path + " exists"};
      }
      if (!r->ok() || answer != "absent") {
        return {TaskOutcome::kFailed, "creates probe: " + CommandFailure(*r)};
      }
    }
    if (task_.unless) {
      StatusOr<std::string> probe = Render(*task_.unless, "unless");
      if (!probe.ok()) return {TaskOutcome::kFailed, probe.status().message()};
      StatusOr<CommandResult> r = Exec(*probe);
      if (!r.ok()) return TransportFailure(r.status(), "unless probe");
      if (r->ok()) return {TaskOutcome::kOk, "unless: the probe succeeded"};
      // A probe that could not even start as root says nothing about the state.
      if (become_ && Contains(r->stderr_text, "a password is required")) {
        return {TaskOutcome::kFailed, "unless probe: " + CommandFailure(*r)};
      }
    }
    if (check_) {
      if (!task_.changed_when) return {TaskOutcome::kSkipped, "not run in check mode"};
      return {TaskOutcome::kWouldChange, ""};
    }
    StatusOr<CommandResult> r = Exec(*command);
    if (!r.ok()) return TransportFailure(r.status(), "");
    if (!r->ok()) return {TaskOutcome::kFailed, CommandFailure(*r)};
    return {task_.changed_when ? TaskOutcome::kChanged : TaskOutcome::kOk, ""};
  }

  Verdict Copy() {
    const CopySpec& spec = task_.copy;
    StatusOr<std::string> dest = Render(spec.dest, "copy.dest");
    if (!dest.ok()) return {TaskOutcome::kFailed, dest.status().message()};
    if (dest->empty() || (*dest)[0] != '/') {
      return {TaskOutcome::kFailed, "copy.dest: expected an absolute path, got \"" + *dest + "\""};
    }
    std::shared_ptr<const LocalFile> file;
    if (spec.has_src) {
      StatusOr<std::string> src = Render(spec.src, "copy.src");
      if (!src.ok()) return {TaskOutcome::kFailed, src.status().message()};
      StatusOr<std::shared_ptr<const LocalFile>> got = files_->Get(JoinPath(base_dir_, *src));
      if (!got.ok()) return {TaskOutcome::kFailed, "copy.src: " + got.status().message()};
      file = *got;
    } else {
      StatusOr<std::string> content = Render(spec.content, "copy.content");
      if (!content.ok()) return {TaskOutcome::kFailed, content.status().message()};
      auto f = std::make_shared<LocalFile>();
      f->sha256 = Sha256Hex(*content);
      f->content = std::move(*content);
      file = f;
    }
    // One probe: what is there now (sha256 and mode), as the task's user.
    std::string probe = "p=" + ShellQuote(*dest) +
                        "; if [ -d \"$p\" ]; then echo directory; elif [ -e \"$p\" ]; then "
                        "h=$(sha256sum < \"$p\") || exit 3; echo \"sha256 ${h%% *}\"; "
                        "stat -c 'mode %a' \"$p\"; else echo absent; fi";
    StatusOr<CommandResult> r = Exec(probe);
    if (!r.ok()) return TransportFailure(r.status(), "copy probe");
    if (!r->ok()) return {TaskOutcome::kFailed, "copy probe: " + CommandFailure(*r)};
    std::string state, sha;
    int mode = -1;
    std::istringstream out(r->stdout_text);
    for (std::string word; out >> word;) {
      if (word == "sha256") {
        out >> sha;
      } else if (word == "mode") {
        std::string m;
        out >> m;
        mode = static_cast<int>(std::strtol(m.c_str(), nullptr, 8));
      } else {
        state = word;
      }
    }
    if (state == "directory") {
      return {TaskOutcome::kFailed,
              "copy.dest: " + *dest + " is a directory; name the file, e.g. " + *dest + "/name"};
    }
    std::string reason;
    if (state == "absent") {
      reason = "created";
    } else if (sha.size() != 64 || mode < 0) {
      return {TaskOutcome::kFailed, "copy probe: unexpected output: " + Tail(r->stdout_text, 3)};
    } else if (sha != file->sha256) {
      reason = "content differs";
    } else if (mode != spec.mode) {
      reason = "mode " + Octal(mode) + " -> " + Octal(spec.mode);
    } else {
      return {TaskOutcome::kOk, ""};
    }
    if (check_) return {TaskOutcome::kWouldChange, reason};
    Verdict v = Upload(file->content, *dest);
    if (v.outcome != TaskOutcome::kChanged) return v;
    return {TaskOutcome::kChanged, reason};
  }

  Verdict Upload(const std::string& content, const std::string& dest) {
    auto left = [&] {
      return std::max(
          std::chrono::milliseconds(1),
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()));
    };
    if (!become_) {
      Status st = host_->Upload(content, dest, task_.copy.mode, left());
      if (!st.ok()) return TransportFailure(st, "upload");
      return {TaskOutcome::kChanged, ""};
    }
    // As a non-root user: to a private temp file (sticky /tmp: nobody else can
    // replace it), then root installs it with the mode, and it is removed.
    std::random_device rd;
    char suffix[32];
    snprintf(suffix, sizeof(suffix), "%08x%08x", rd(), rd());
    std::string tmp = std::string("/tmp/.coord-upload-") + suffix;
    Status st = host_->Upload(content, tmp, 0600, left());
    if (!st.ok()) return TransportFailure(st, "upload");
    std::string install = BecomeCommand("install -m " + Octal(task_.copy.mode) + " " +
                                        ShellQuote(tmp) + " " + ShellQuote(dest)) +
                          "; rc=$?; rm -f " + ShellQuote(tmp) + "; exit $rc";
    StatusOr<CommandResult> r = ExecRaw(install);
    if (!r.ok()) return TransportFailure(r.status(), "install");
    if (!r->ok()) return {TaskOutcome::kFailed, "install: " + CommandFailure(*r)};
    return {TaskOutcome::kChanged, ""};
  }

  RemoteHost* host_;
  const Task& task_;
  VarLookup vars_;
  const bool become_;  // wrap in sudo: become is on and the user is not root
  const bool check_;
  const std::string& base_dir_;
  LocalFiles* files_;
  const Clock::time_point deadline_;  // the whole task, probes included
};

// ---------------------------------------------------------------------------
// One host: connect, facts, every task of every play until one fails

class HostRun {
 public:
  HostRun(const Playbook& playbook, const InventoryHost& inv, const RunOptions& options,
          const Connector& connector, RunState* state, Reporter* reporter, HostResult* out)
      : playbook_(playbook),
        inv_(inv),
        options_(options),
        connector_(connector),
        state_(state),
        reporter_(reporter),
        out_(out) {}

  void Run() {
    out_->host = inv_.name;
    if (state_->aborted()) {
      out_->aborted = true;
      Record(kStartStep, 0, {TaskOutcome::kAborted, "not started: " + state_->AbortMessage()}, 0);
      return;
    }
    Clock::time_point t0 = Clock::now();
    StatusOr<std::unique_ptr<RemoteHost>> host = connector_(inv_);
    if (!host.ok()) {
      return Fail(kConnectStep, 0, {TaskOutcome::kUnreachable, host.status().message()}, t0);
    }
    host_ = std::move(*host);
    if (!GatherFacts()) return;
    // Precedence, highest first: --var, vars file, play vars, host vars, facts.
    int index = 0;
    for (const Play& play : playbook_.plays) {
      VarScope scope;
      scope.AddLayer(&options_.vars, true);
      scope.AddLayer(&options_.vars_file, true);
      scope.AddLayer(&play.vars, true);
      scope.AddLayer(&inv_.vars, true);
      scope.AddLayer(&out_->facts, false);
      for (const Task& task : play.tasks) {
        ++index;
        if (state_->aborted()) {
          out_->aborted = true;
          Record(task.name, index, {TaskOutcome::kAborted, state_->AbortMessage()}, 0);
          return;
        }
        t0 = Clock::now();
        bool become = task.become.value_or(play.become) && out_->facts.at("user_id") != "0";
        TaskRun run(host_.get(), task, scope.AsLookup(), become, options_, playbook_.base_dir,
                    &state_->files);
        Verdict v = run.Run();
        if (v.outcome == TaskOutcome::kFailed || v.outcome == TaskOutcome::kUnreachable) {
          return Fail(task.name, index, v, t0);
        }
        Record(task.name, index, v, SecondsSince(t0));
      }
    }
  }

 private:
  bool GatherFacts() {
    Clock::time_point t0 = Clock::now();
    StatusOr<CommandResult> r = host_->Run(FactsCommand(), options_.facts_timeout);
    if (!r.ok()) {
      // The session cannot run even this read-only command.
      Fail(kFactsStep, 0, {TaskOutcome::kUnreachable, r.status().message()}, t0);
      return false;
    }
    if (!r->ok()) {
      Fail(kFactsStep, 0, {TaskOutcome::kFailed, DescribeFailure(*r, false)}, t0);
      return false;
    }
    StatusOr<Vars> facts = ParseFacts(r->stdout_text);
    if (!facts.ok()) {
      Fail(kFactsStep, 0, {TaskOutcome::kFailed, facts.status().message()}, t0);
      return false;
    }
    out_->facts = std::move(*facts);
    out_->facts["inventory_hostname"] = inv_.name;
    return true;
  }

  void Fail(const std::string& task, int index, const Verdict& v, Clock::time_point t0) {
    if (v.outcome == TaskOutcome::kUnreachable) {
      out_->unreachable = true;
    } else {
      out_->failed = true;
    }
    // Count before reporting: a reporter that reads the abort state sees it.
    state_->HostFailed();
    Record(task, index, v, SecondsSince(t0));
  }

  void Record(const std::string& task, int index, const Verdict& v, double seconds) {
    TaskResult r;
    r.host = inv_.name;
    r.task = task;
    r.index = index;
    r.total = playbook_.TaskCount();
    r.outcome = v.outcome;
    r.message = v.message;
    r.seconds = seconds;
    out_->tasks.push_back(r);
    if (reporter_) reporter_->TaskFinished(r);
  }

  const Playbook& playbook_;
  const InventoryHost& inv_;
  const RunOptions& options_;
  const Connector& connector_;
  RunState* state_;
  Reporter* reporter_;
  HostResult* out_;
  std::unique_ptr<RemoteHost> host_;
};

Status ValidateRun(const Playbook& playbook, const std::vector<InventoryHost>& inventory,
                   const RunOptions& options) {
  if (options.forks < 1) return InvalidArgument("forks must be at least 1");
  if (options.max_fail_percent < 0 || options.max_fail_percent > 100) {
    return InvalidArgument("max_fail_percent must be from 0 to 100");
  }
  if (inventory.empty()) return InvalidArgument("the inventory has no hosts");
  std::set<std::string> names, defined;
  for (const InventoryHost& h : inventory) {
    if (!names.insert(h.name).second) {
      return InvalidArgument("host \"" + h.name + "\" is twice in the inventory");
    }
    for (const auto& kv : h.vars) defined.insert(kv.first);
  }
  for (const auto& kv : options.vars) defined.insert(kv.first);
  for (const auto& kv : options.vars_file) defined.insert(kv.first);
  return CheckVariablesDefined(playbook, defined);
}

}  // namespace

StatusOr<PlaybookResult> RunPlaybook(const Playbook& playbook,
                                     const std::vector<InventoryHost>& inventory,
                                     const RunOptions& options, const Connector& connector,
                                     Reporter* reporter) {
  RETURN_IF_ERROR(ValidateRun(playbook, inventory, options));
  Clock::time_point t0 = Clock::now();
  PlaybookResult result;
  result.playbook = playbook.file;
  result.check = options.check;
  result.max_fail_percent = options.max_fail_percent;
  result.hosts.resize(inventory.size());
  if (reporter) {
    RunInfo info{playbook.file, {}, playbook.TaskCount(), options.check};
    for (const auto& h : inventory) info.hosts.push_back(h.name);
    reporter->RunStarted(info);
  }
  RunState state(static_cast<int>(inventory.size()), options.max_fail_percent);
  // Hosts are taken in inventory order, so forks=1 is fully deterministic.
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next++; i < inventory.size(); i = next++) {
      HostRun(playbook, inventory[i], options, connector, &state, reporter, &result.hosts[i]).Run();
    }
  };
  size_t threads = std::min(inventory.size(), static_cast<size_t>(options.forks));
  std::vector<std::thread> pool;
  for (size_t i = 0; i < threads; ++i) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  result.aborted_by_max_fail = state.aborted();
  result.seconds = SecondsSince(t0);
  if (reporter) reporter->RunFinished(result);
  return result;
}

}  // namespace coord::playbooks
