// Test support: spawning, waiting for and cleaning up real processes.
#include "tests/support/test_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#ifndef COORD_TEST_BIN_DIR
#error "COORD_TEST_BIN_DIR must be defined by CMake"
#endif

namespace coord::testing {
namespace {

// Child side of fork: environment, output files, exec. Only called in the child.
[[noreturn]] void ExecChild(const std::vector<std::string>& argv,
                            const std::map<std::string, std::string>& env, const std::string& out,
                            const std::string& err) {
  // Programs under test never pick up the developer's own certificates
  // (~/.coord/tls); a test that wants TLS passes COORD_TLS_DIR or --tls-dir.
  setenv("COORD_TLS_DIR", "/nonexistent/coord-test-tls", 1);
  for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
  int devnull = open("/dev/null", O_RDONLY);
  dup2(devnull, 0);
  int o = open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  int e = err == out ? o : open(err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  dup2(o, 1);
  dup2(e, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execvp(args[0], args.data());
  dprintf(2, "exec %s: %s\n", args[0], strerror(errno));
  _exit(127);
}

}  // namespace

std::string BinDir() { return COORD_TEST_BIN_DIR; }
std::string BinPath(const std::string& name) { return BinDir() + "/" + name; }

TempDir::TempDir() {
  char tmpl[] = "/tmp/coord-test-XXXXXX";
  path_ = mkdtemp(tmpl) ? tmpl : "/tmp";
}

TempDir::~TempDir() {
  if (path_ != "/tmp" && path_.rfind("/tmp/coord-test-", 0) == 0) {
    std::string cmd = "rm -rf '" + path_ + "'";
    (void)system(cmd.c_str());
  }
}

RunResult RunCommand(const std::vector<std::string>& argv,
                     const std::map<std::string, std::string>& env, int timeout_ms) {
  TempDir tmp;
  std::string out = tmp.File("out"), err = tmp.File("err");
  auto start = std::chrono::steady_clock::now();
  RunResult result;
  pid_t pid = fork();
  if (pid == 0) ExecChild(argv, env, out, err);
  int status = 0;
  bool done = WaitUntil([&] { return waitpid(pid, &status, WNOHANG) == pid; }, timeout_ms);
  if (!done) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    result.timed_out = true;
  }
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.exit_code = (!result.timed_out && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  result.out = ReadAll(out);
  result.err = ReadAll(err);
  return result;
}

Process::~Process() { Stop(); }

bool Process::Start(const std::vector<std::string>& argv, const std::string& log_path,
                    const std::map<std::string, std::string>& env) {
  reaped_ = false;
  wait_status_ = -1;
  pid_ = fork();
  if (pid_ == 0) ExecChild(argv, env, log_path, log_path);
  return pid_ > 0;
}

bool Process::Alive() const {
  if (pid_ <= 0 || reaped_) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) != pid_) return true;
  reaped_ = true;
  wait_status_ = status;
  return false;
}

int Process::Wait(int timeout_ms) {
  if (pid_ <= 0) return -1;
  if (!WaitUntil([&] { return !Alive(); }, timeout_ms)) return -1;
  return wait_status_;
}

int Process::Stop(int grace_ms) {
  if (pid_ <= 0) return -1;
  if (reaped_ || !Alive()) {
    pid_ = -1;
    return wait_status_;
  }
  int status = 0;
  kill(pid_, SIGTERM);
  bool exited = WaitUntil([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, grace_ms);
  if (!exited) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
  }
  pid_ = -1;
  return status;
}

void Process::Crash() {
  if (pid_ <= 0) return;
  if (reaped_ || !Alive()) {
    pid_ = -1;
    return;
  }
  kill(pid_, SIGKILL);
  int status;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

int UnusedTcpPort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool WriteTextFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  return static_cast<bool>(out);
}

std::string WaitForFile(const std::string& path, int timeout_ms) {
  std::string text;
  WaitUntil([&] {
    text = ReadAll(path);
    return !text.empty();
  }, timeout_ms);
  return text;
}

std::vector<pid_t> ProcessesWithEnv(const std::string& name, const std::string& value) {
  std::vector<pid_t> pids;
  std::string needle = name + "=" + value;
  DIR* d = opendir("/proc");
  if (!d) return pids;
  while (struct dirent* e = readdir(d)) {
    char* end;
    long pid = strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    std::string env = ReadAll("/proc/" + std::string(e->d_name) + "/environ");
    // Zombies have an empty environ: they are already dead, only not yet reaped.
    size_t pos = 0;
    while (pos < env.size()) {
      size_t nul = env.find('\0', pos);
      if (nul == std::string::npos) nul = env.size();
      if (env.compare(pos, nul - pos, needle) == 0) {
        pids.push_back(static_cast<pid_t>(pid));
        break;
      }
      pos = nul + 1;
    }
  }
  closedir(d);
  return pids;
}

void KillPids(const std::vector<pid_t>& pids) {
  for (pid_t p : pids) kill(p, SIGKILL);
}

}  // namespace coord::testing
