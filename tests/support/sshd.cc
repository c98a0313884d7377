// Test support: the real-sshd fixture (see sshd.h). The accept thread forks and
// execs `sshd -i` with the connection as stdin/stdout, as inetd would; between
// fork and exec the child only calls async-signal-safe functions.
#include "tests/support/sshd.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <sstream>

#include "tests/support/files.h"
#include "tests/support/process.h"
#include "tests/support/wait.h"

namespace coord::testing {
namespace {

constexpr char kSshd[] = "/usr/sbin/sshd";

bool KeyGen(const std::string& path, const std::string& comment, std::string* error) {
  RunResult r = RunCommand(
      {"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path}, {}, 20000);
  if (r.exit_code == 0) return true;
  *error = "ssh-keygen " + path + " failed: " + r.out + r.err;
  return false;
}

// "ssh-ed25519 AAAA..." from a .pub line (drops the comment).
std::string TypeAndKey(const std::string& pub_line) {
  std::istringstream in(pub_line);
  std::string type, key;
  in >> type >> key;
  return type + " " + key;
}

// comm and parent of a live process, from /proc/PID/stat ("pid (comm) S ppid ...").
bool ReadStat(pid_t pid, std::string* comm, pid_t* ppid) {
  const std::string stat = ReadAll("/proc/" + std::to_string(pid) + "/stat");
  const size_t open = stat.find('('), close = stat.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return false;
  *comm = stat.substr(open + 1, close - open - 1);
  char state = 0;
  int parent = 0;
  if (sscanf(stat.c_str() + close + 1, " %c %d", &state, &parent) != 2) return false;
  *ppid = parent;
  return state != 'Z';
}

}  // namespace

std::unique_ptr<Sshd> Sshd::Start(const std::string& address, std::string* error) {
  std::unique_ptr<Sshd> sshd(new Sshd());
  if (!sshd->Setup(address, error)) return nullptr;
  sshd->acceptor_ = std::thread([s = sshd.get()] { s->AcceptLoop(); });
  return sshd;
}

bool Sshd::Setup(const std::string& address, std::string* error) {
  address_ = address;
  if (access(kSshd, X_OK) != 0) {
    *error = std::string(kSshd) + " is not installed (openssh-server)";
    return false;
  }
  // sshd's privilege-separation chroot; Debian creates it only when the service runs.
  if (mkdir("/run/sshd", 0755) != 0 && errno != EEXIST) {
    *error = std::string("mkdir /run/sshd: ") + strerror(errno);
    return false;
  }
  const std::string host_key = File("host_ed25519");
  user_key_ = File("user_ed25519");
  other_key_ = File("other_ed25519");
  if (!KeyGen(host_key, "coord-test-host", error) || !KeyGen(user_key_, "coord-test-user", error) ||
      !KeyGen(other_key_, "coord-test-other", error))
    return false;
  host_public_key_ = TypeAndKey(ReadAll(host_key + ".pub"));
  config_ = File("sshd_config");
  log_ = File("sshd.log");
  stderr_log_ = File("sshd.stderr");
  const std::string config = "HostKey " + host_key + "\nAuthorizedKeysFile " +
                             File("authorized_keys") + "\n" +
                             R"(StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
Subsystem sftp internal-sftp
LogLevel VERBOSE
PidFile none
UseDNS no
PrintMotd no
SetEnv SHLVL=1
)";
  // SHLVL=1: bash sources ~/.bashrc for ssh commands only while SHLVL < 2; this
  // keeps the machine's rc files (slow, noisy) out of the tests.
  if (!WriteTextFile(File("authorized_keys"), ReadAll(user_key_ + ".pub")) ||
      !WriteTextFile(config_, config)) {
    *error = "cannot write the sshd files in " + dir_.path();
    return false;
  }
  RunResult check = RunCommand({kSshd, "-t", "-f", config_}, {}, 20000);
  if (check.exit_code != 0) {
    *error = "sshd -t rejects the config: " + check.out + check.err;
    return false;
  }

  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;  // the kernel picks the port; port() reports it
  socklen_t len = sizeof(addr);
  if (listen_fd_ < 0 || inet_pton(AF_INET, address.c_str(), &addr.sin_addr) != 1 ||
      bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listen_fd_, 16) != 0 ||
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      pipe2(wake_, O_CLOEXEC) != 0) {
    *error = "listen on " + address + ":0: " + strerror(errno);
    return false;
  }
  port_ = ntohs(addr.sin_port);
  return true;
}

Sshd::~Sshd() {
  if (acceptor_.joinable()) {
    (void)!write(wake_[1], "x", 1);
    acceptor_.join();
  }
  for (int fd : {listen_fd_, wake_[0], wake_[1]})
    if (fd >= 0) close(fd);
  std::lock_guard<std::mutex> lock(mu_);
  // The sshd monitor passes SIGTERM on to its session child, so the connection
  // ends; the commands it ran are the test's to stop.
  for (pid_t pid : pids_) kill(pid, SIGTERM);
  WaitUntil(
      [&] {
        ReapExited();
        return pids_.empty();
      },
      2000);
  for (pid_t pid : pids_) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
}

void Sshd::AcceptLoop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    const int n = poll(fds, 2, 200);
    if (n < 0 && errno != EINTR) return;
    if (fds[1].revents) return;
    if (n > 0 && (fds[0].revents & POLLIN)) {
      const int conn = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn >= 0) {
        Spawn(conn);
        close(conn);
        ++accepted_;
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    ReapExited();
  }
}

void Sshd::Spawn(int conn) {
  // Built before fork: the child must not allocate.
  const std::vector<std::string> args = {kSshd, "-i", "-f", config_, "-E", log_};
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const char* err_path = stderr_log_.c_str();
  std::lock_guard<std::mutex> lock(mu_);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    // Ends with the acceptor thread, or with the test if ctest SIGKILLs it. SIGTERM, not
    // SIGKILL: the sshd monitor passes it on, so its session ends too (see ~Sshd).
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent) _exit(127);
    dup2(conn, 0);  // dup2 clears close-on-exec on the copies
    dup2(conn, 1);
    const int err = open(err_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (err >= 0) dup2(err, 2);
    // Nothing else of the test process (client sockets of other sessions) may
    // leak into sshd: it would keep those connections alive.
    for (int fd = 3; fd < 1024; ++fd) close(fd);
    execv(argv[0], argv.data());
    _exit(127);
  }
  if (pid > 0) pids_.push_back(pid);
}

void Sshd::ReapExited() {
  for (auto it = pids_.begin(); it != pids_.end();) {
    if (waitpid(*it, nullptr, WNOHANG) == *it) {
      it = pids_.erase(it);
    } else {
      ++it;
    }
  }
}

std::vector<pid_t> Sshd::ConnectionPids() {
  std::vector<pid_t> result;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ReapExited();
    result = pids_;
  }
  // Parent -> children among live sshd processes.
  std::multimap<pid_t, pid_t> children;
  if (DIR* d = opendir("/proc")) {
    while (dirent* e = readdir(d)) {
      char* end;
      const long pid = strtol(e->d_name, &end, 10);
      std::string comm;
      pid_t ppid = 0;
      if (*end == '\0' && pid > 0 && ReadStat(pid, &comm, &ppid) && comm == "sshd")
        children.emplace(ppid, static_cast<pid_t>(pid));
    }
    closedir(d);
  }
  for (size_t i = 0; i < result.size(); ++i) {
    auto [first, last] = children.equal_range(result[i]);
    for (auto it = first; it != last; ++it) result.push_back(it->second);
  }
  return result;
}

std::string Sshd::KnownHostsLine() const {
  return "[" + address_ + "]:" + std::to_string(port_) + " " + host_public_key_;
}

bool Sshd::WriteKnownHosts(const std::string& path) const {
  return WriteTextFile(path, KnownHostsLine() + "\n");
}

std::string Sshd::Log() const { return ReadAll(log_) + ReadAll(stderr_log_); }

}  // namespace coord::testing
