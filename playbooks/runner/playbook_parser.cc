// The playbook parser (playbook_parser.h): yaml-cpp builds the node tree, this
// file walks it with the document path in hand so every error says where it is
// and what to write instead. The only file of the runner that sees YAML. Pure
// but for Load*, which read the file first.
#include "playbooks/runner/playbook_parser.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <utility>

#include "common/fs.h"

namespace coord::playbooks {

// ---------------------------------------------------------------------------
// YAML walking helpers

namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

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

// ---------------------------------------------------------------------------
// Plays, tasks, copy and vars maps

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

// ---------------------------------------------------------------------------
// Entry points

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

}  // namespace coord::playbooks
