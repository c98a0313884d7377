// RealSystem: System for this machine, in plain POSIX. Commands and the directory
// probe run in child processes so that neither a stuck program nor a hung NFS
// mount can stall the check run past its deadline.
#include "env_check/system.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "common/clock.h"
#include "common/net.h"

#define XXH_STATIC_LINKING_ONLY  // XXH64_state_t on the stack (no malloc in a forked child)
#include <xxhash.h>

extern char** environ;

namespace coord::env_check {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxCapture = 1 << 20;

int MsLeft(Clock::time_point end) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

// Children we killed but could not reap. A process in uninterruptible NFS I/O (or
// a driver call of a wedged nvidia-smi) ignores SIGKILL until the kernel call
// returns; waiting for it would hang the very check the deadline protects. They
// are reaped without blocking on later calls, so a long-lived agent does not
// collect zombies.
std::mutex g_abandoned_mu;
std::vector<pid_t> g_abandoned;

void ReapAbandoned() {
  std::lock_guard<std::mutex> lock(g_abandoned_mu);
  std::vector<pid_t> still;
  for (pid_t p : g_abandoned) {
    if (waitpid(p, nullptr, WNOHANG) == 0) still.push_back(p);
  }
  g_abandoned.swap(still);
}

// Kills (the group of, when group) pid and reaps it if it dies within a moment;
// otherwise leaves it to ReapAbandoned.
void KillAndReap(pid_t pid, bool group, int* status) {
  kill(group ? -pid : pid, SIGKILL);
  for (int i = 0; i < 100; ++i) {
    if (waitpid(pid, status, WNOHANG) == pid) return;
    usleep(1000);
  }
  std::lock_guard<std::mutex> lock(g_abandoned_mu);
  g_abandoned.push_back(pid);
}

class RealSystem : public System {
 public:
  explicit RealSystem(std::string root) : root_(std::move(root)) {
    while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
    if (root_ == "/") root_.clear();
  }

  StatusOr<std::string> ReadFile(const std::string& path) const override {
    std::ifstream in(Under(path), std::ios::binary);
    if (!in) return ErrnoStatus("open " + path, errno ? errno : ENOENT);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  bool Exists(const std::string& path) const override {
    struct stat st;
    return stat(Under(path).c_str(), &st) == 0;
  }

  StatusOr<std::vector<std::string>> ListDir(const std::string& path) const override {
    DIR* d = opendir(Under(path).c_str());
    if (!d) return ErrnoStatus("opendir " + path, errno);
    std::vector<std::string> names;
    while (dirent* e = readdir(d)) {
      if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) names.push_back(e->d_name);
    }
    closedir(d);
    return names;
  }

  CommandResult Run(const std::vector<std::string>& argv,
                    std::chrono::milliseconds deadline) const override;
  CommandResult RunVersionQuery(const std::vector<std::string>& argv,
                                std::chrono::milliseconds deadline) const override;

  void* Symbol(const std::string& library, const std::string& symbol) const override {
    std::lock_guard<std::mutex> lock(dl_mu_);
    auto it = handles_.find(library);
    if (it == handles_.end()) {
      // Kept open for the process's life: symbols handed out must stay valid.
      it = handles_.emplace(library, dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL)).first;
    }
    return it->second ? dlsym(it->second, symbol.c_str()) : nullptr;
  }

  std::string Getenv(const std::string& name) const override {
    const char* v = getenv(name.c_str());
    return v ? v : "";
  }

  std::string Hostname() const override {
    char buf[256] = {};
    gethostname(buf, sizeof(buf) - 1);
    return buf;
  }

  StatusOr<FsSpace> Space(const std::string& path,
                          std::chrono::milliseconds deadline) const override;
  StatusOr<ProgramInfo> LocateProgram(const std::string& program, const std::string& search_path,
                                      std::chrono::milliseconds deadline) const override;
  Status WriteSmallFile(const std::string& path, const std::string& content,
                        std::chrono::milliseconds deadline) const override;
  StatusOr<std::vector<StatusOr<std::string>>> ReadSmallFiles(
      const std::vector<std::string>& paths, std::chrono::milliseconds deadline) const override;
  Status RemoveSmallFile(const std::string& path,
                         std::chrono::milliseconds deadline) const override;

  ResourceLimit Limit(int resource) const override {
    struct rlimit rl;
    if (getrlimit(resource, &rl) != 0) return {};
    auto conv = [](rlim_t v) { return v == RLIM_INFINITY ? UINT64_MAX : static_cast<uint64_t>(v); };
    return {conv(rl.rlim_cur), conv(rl.rlim_max)};
  }

  Status ProbeDirectory(const std::string& path, bool write,
                        std::chrono::milliseconds deadline) const override;

  bool PortFree(int port) const override { return TcpPortBindable(port); }

  StatusOr<std::string> Resolve(const std::string& host) const override {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
    if (rc != 0 || !res) return NotFound(host + ": " + gai_strerror(rc));
    char buf[INET6_ADDRSTRLEN] = {};
    const void* a =
        res->ai_family == AF_INET6
            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(res->ai_addr)->sin6_addr)
            : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr);
    inet_ntop(res->ai_family, a, buf, sizeof(buf));
    freeaddrinfo(res);
    return std::string(buf);
  }

 private:
  std::string Under(const std::string& path) const { return root_ + path; }

  std::string root_;
  mutable std::mutex dl_mu_;
  mutable std::map<std::string, void*> handles_;
  mutable std::mutex answers_mu_;
  mutable std::map<std::string, CommandResult> answers_;  // RunVersionQuery's
};

namespace {

// Where execvp looks for `program`, in its order: the path itself when it has a '/',
// else each directory of `path_env` (empty: the default PATH; an empty entry: ".").
std::vector<std::string> ExecCandidates(const std::string& program, std::string path_env) {
  if (program.find('/') != std::string::npos) return {program};
  if (path_env.empty()) path_env = "/usr/local/bin:/usr/bin:/bin";
  std::vector<std::string> candidates;
  std::istringstream dirs(path_env);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    candidates.push_back((dir.empty() ? "." : dir) + "/" + program);
  }
  return candidates;
}

// The file posix_spawnp would run for `program` with this process's PATH, and its
// identity: a reinstalled or replaced program gets another key. "" when not found.
std::string ProgramIdentity(const std::string& program) {
  const char* path_env = getenv("PATH");
  for (const std::string& c : ExecCandidates(program, path_env ? path_env : "")) {
    struct stat st;
    if (stat(c.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || access(c.c_str(), X_OK) != 0) continue;
    return c + " " + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + " " +
           std::to_string(st.st_size) + " " + std::to_string(st.st_mtim.tv_sec) + "." +
           std::to_string(st.st_mtim.tv_nsec) + " " + std::to_string(st.st_ctim.tv_sec) + "." +
           std::to_string(st.st_ctim.tv_nsec);
  }
  return "";
}

constexpr size_t kMaxRememberedAnswers = 64;

}  // namespace

CommandResult RealSystem::RunVersionQuery(const std::vector<std::string>& argv,
                                          std::chrono::milliseconds deadline) const {
  if (argv.empty()) return Run(argv, deadline);
  std::string key = ProgramIdentity(argv[0]);
  if (key.empty()) return Run(argv, deadline);  // not found: Run says so
  for (size_t i = 1; i < argv.size(); ++i) key += '\0' + argv[i];
  {
    std::lock_guard<std::mutex> lock(answers_mu_);
    auto it = answers_.find(key);
    if (it != answers_.end()) return it->second;
  }
  CommandResult r = Run(argv, deadline);
  if (!r.timed_out && !r.not_found) {
    std::lock_guard<std::mutex> lock(answers_mu_);
    if (answers_.size() >= kMaxRememberedAnswers) answers_.clear();
    answers_[key] = r;
  }
  return r;
}

CommandResult RealSystem::Run(const std::vector<std::string>& argv,
                              std::chrono::milliseconds deadline) const {
  ReapAbandoned();
  CommandResult r;
  if (argv.empty()) {
    r.not_found = true;
    return r;
  }
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) return r;
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]), close(out[1]);
    return r;
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  // posix_spawnp (vfork-like: no copy of the agent's page tables, which a plain
  // fork pays for every command of every check) in its own process group, so the
  // deadline kill reaches grandchildren. It reports a failed exec itself.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t pid = -1;
  const int spawned = posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(out[1]);
  close(err[1]);
  if (spawned != 0) {
    close(out[0]), close(err[0]);
    r.not_found = spawned == ENOENT;
    if (!r.not_found) r.err = std::string("exec ") + argv[0] + ": " + strerror(spawned);
    return r;
  }

  for (int fd : {out[0], err[0]}) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  // Read until the child exits, not until the pipes close: a concurrent fork in
  // another check thread, or a daemonized grandchild, can hold the write ends.
  const auto end = Clock::now() + deadline;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* bufs[2] = {&r.out, &r.err};
  auto drain = [&](int i) {
    char buf[65536];
    while (fds[i].fd >= 0) {
      ssize_t got = read(fds[i].fd, buf, sizeof(buf));
      if (got > 0) {
        // Keep draining past the cap so the child never blocks on a full pipe.
        size_t room = kMaxCapture - std::min(kMaxCapture, bufs[i]->size());
        bufs[i]->append(buf, std::min(room, static_cast<size_t>(got)));
      } else if (got < 0 && errno == EINTR) {
        continue;
      } else {
        if (got == 0 || errno != EAGAIN) {
          close(fds[i].fd);
          fds[i].fd = -1;
        }
        return;
      }
    }
  };
  int status = 0;
  bool exited = false;
  while (true) {
    int left = MsLeft(end);
    if (left == 0) break;
    // Short polls so the waitpid below notices an exit promptly.
    if (poll(fds, 2, std::min(left, 20)) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd >= 0 && fds[i].revents) drain(i);
    }
    if (waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      drain(0);
      drain(1);
      break;
    }
  }
  for (pollfd& p : fds) {
    if (p.fd >= 0) close(p.fd);
  }

  if (!exited) {
    r.timed_out = true;
    KillAndReap(pid, /*group=*/true, &status);
    return r;
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// --- work in a child process, bounded by a deadline -------------------------------
// Everything that touches a filesystem that may be a dead NFS server runs in a
// forked child: the parent waits with a deadline and kills it past that. The child
// is forked from a threaded process (checks run in parallel, the agent serves RPCs)
// whose other threads may hold malloc's lock at that moment, so the child's work
// makes system calls only: no allocation, no stdio, no opendir. Inputs are built
// before the fork; results come back through a shared anonymous mapping.

constexpr size_t kSharedBytes = 8192;
// Cluster-check tokens: what WriteSmallFile accepts is what ReadSmallFiles returns whole.
constexpr size_t kMaxSmallFile = 1024;

// Runs work(shared) in a child. work returns 0 or an errno value (its exit status).
// `what` names the operation in errors ("probe of /cfs").
template <typename Work>
Status RunBounded(const std::string& what, std::chrono::milliseconds deadline, char* shared,
                  Work work) {
  ReapAbandoned();
  pid_t pid = fork();
  if (pid == 0) _exit(work(shared));
  if (pid < 0) return ErrnoStatus("fork", errno);
  // waitpid polling rather than a pipe: another check thread may fork at the same
  // moment and hold a copy of any pipe we make, so EOF would not mean "exited".
  const auto end = Clock::now() + deadline;
  int status = 0;
  while (true) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) return ErrnoStatus("waitpid", errno);
    if (MsLeft(end) == 0) {
      KillAndReap(pid, /*group=*/false, &status);
      return DeadlineExceeded(what + " did not answer within " + FormatSeconds(deadline) +
                              " (hung NFS mount?)");
    }
    usleep(1000);
  }
  if (!WIFEXITED(status)) return Internal(what + " was killed by a signal");
  int e = WEXITSTATUS(status);
  return e == 0 ? Status::Ok() : ErrnoStatus(what, e);
}

// A MAP_SHARED page the child writes its answer into.
class SharedPage {
 public:
  SharedPage() {
    void* p = mmap(nullptr, kSharedBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    data_ = p == MAP_FAILED ? nullptr : static_cast<char*>(p);
  }
  ~SharedPage() {
    if (data_) munmap(data_, kSharedBytes);
  }
  char* data() const { return data_; }

 private:
  char* data_;
};

int ProbeChild(const char* path, bool write, const char* file) {
  struct stat st;
  if (stat(path, &st) != 0) return errno;
  const int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return errno;
  char entries[4096];
  long n;
  while ((n = syscall(SYS_getdents64, dfd, entries, sizeof(entries))) > 0) {
  }
  const int e = n < 0 ? errno : 0;
  close(dfd);
  if (e) return e;
  if (!write) return 0;
  int fd = open(file, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return errno;
  const char kData[] = "coord env_check probe\n";
  int rc = 0;
  char back[sizeof(kData)] = {};
  if (pwrite(fd, kData, sizeof(kData), 0) != static_cast<ssize_t>(sizeof(kData)))
    rc = errno ? errno : EIO;
  else if (fsync(fd) != 0)
    rc = errno;
  else if (pread(fd, back, sizeof(back), 0) != static_cast<ssize_t>(sizeof(back)) ||
           memcmp(back, kData, sizeof(kData)) != 0)
    rc = EIO;
  close(fd);
  if (unlink(file) != 0 && rc == 0) rc = errno;
  return rc;
}

// Digests an open file with XXH64 into shared (16 hex digits, NUL) and its size
// after them. The state lives on the stack: XXH64_createState would malloc.
int DigestChild(int fd, char* shared) {
  XXH64_state_t state;
  XXH64_reset(&state, 0);
  char buf[65536];
  uint64_t size = 0;
  ssize_t got;
  while ((got = read(fd, buf, sizeof(buf))) > 0) {
    XXH64_update(&state, buf, static_cast<size_t>(got));
    size += static_cast<uint64_t>(got);
  }
  if (got < 0) return errno;
  uint64_t h = XXH64_digest(&state);
  const char* hex = "0123456789abcdef";
  for (int i = 0; i < 16; ++i) shared[i] = hex[(h >> (60 - 4 * i)) & 0xf];
  shared[16] = '\0';
  memcpy(shared + 24, &size, sizeof(size));
  return 0;
}

}  // namespace

Status RealSystem::ProbeDirectory(const std::string& path, bool write,
                                  std::chrono::milliseconds deadline) const {
  static std::atomic<uint64_t> probe_counter{0};
  const std::string file = path + "/.coord-probe-" + Hostname() + "-" + std::to_string(getpid()) +
                           "-" + std::to_string(probe_counter++);
  return RunBounded((write ? "write probe of " : "probe of ") + path, deadline, nullptr,
                    [&](char*) { return ProbeChild(path.c_str(), write, file.c_str()); });
}

StatusOr<FsSpace> RealSystem::Space(const std::string& path,
                                    std::chrono::milliseconds deadline) const {
  SharedPage page;
  if (!page.data()) return ErrnoStatus("mmap", errno);
  RETURN_IF_ERROR(RunBounded("statvfs " + path, deadline, page.data(), [&](char* shared) {
    struct statvfs st;
    if (statvfs(path.c_str(), &st) != 0) return errno;
    FsSpace space{static_cast<uint64_t>(st.f_bavail) * st.f_frsize,
                  static_cast<uint64_t>(st.f_blocks) * st.f_frsize};
    memcpy(shared, &space, sizeof(space));
    return 0;
  }));
  FsSpace space;
  memcpy(&space, page.data(), sizeof(space));
  return space;
}

StatusOr<ProgramInfo> RealSystem::LocateProgram(const std::string& program,
                                                const std::string& search_path,
                                                std::chrono::milliseconds deadline) const {
  if (program.empty()) return InvalidArgument("no program given");
  // Candidates in execvp's order, built before the fork.
  const std::vector<std::string> candidates =
      ExecCandidates(program, search_path.empty() ? Getenv("PATH") : search_path);
  std::vector<const char*> paths;
  for (const std::string& c : candidates) paths.push_back(c.c_str());
  SharedPage page;
  if (!page.data()) return ErrnoStatus("mmap", errno);
  Status st = RunBounded("looking up " + program, deadline, page.data(), [&](char* shared) {
    for (size_t i = 0; i < paths.size(); ++i) {
      struct stat s;
      if (stat(paths[i], &s) != 0 || !S_ISREG(s.st_mode) || access(paths[i], X_OK) != 0)
        continue;
      int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
      if (fd < 0) return errno;
      int rc = DigestChild(fd, shared);
      close(fd);
      memcpy(shared + 32, &i, sizeof(i));
      return rc;
    }
    return ENOENT;
  });
  if (!st.ok()) {
    if (st.code() == StatusCode::kNotFound)
      return NotFound(program + " not found" +
                      (program.find('/') == std::string::npos ? " on PATH" : ""));
    return st;
  }
  ProgramInfo info;
  size_t index = 0;
  memcpy(&index, page.data() + 32, sizeof(index));
  info.path = candidates.at(index);
  info.digest.assign(page.data(), 16);
  memcpy(&info.size, page.data() + 24, sizeof(info.size));
  return info;
}

Status RealSystem::WriteSmallFile(const std::string& path, const std::string& content,
                                  std::chrono::milliseconds deadline) const {
  if (content.size() > kMaxSmallFile)
    return InvalidArgument(path + ": " + std::to_string(content.size()) + " bytes; at most " +
                           std::to_string(kMaxSmallFile) + " are read back");
  // Every missing directory on the way (mkdir -p), outermost first.
  std::vector<std::string> dirs;
  for (size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1))
    dirs.push_back(path.substr(0, slash));
  const std::string tmp = path + ".tmp";
  return RunBounded("writing " + path, deadline, nullptr, [&](char*) {
    for (const std::string& d : dirs) {
      if (mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) return errno;
    }
    int fd = open(tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) return errno;
    int rc = 0;
    if (write(fd, content.data(), content.size()) != static_cast<ssize_t>(content.size()))
      rc = errno ? errno : EIO;
    else if (fsync(fd) != 0)
      rc = errno;
    close(fd);
    if (rc == 0 && rename(tmp.c_str(), path.c_str()) != 0) rc = errno;
    if (rc != 0) unlink(tmp.c_str());
    return rc;
  });
}

StatusOr<std::vector<StatusOr<std::string>>> RealSystem::ReadSmallFiles(
    const std::vector<std::string>& paths, std::chrono::milliseconds deadline) const {
  // One slot per file in a shared mapping: [int64 length or -errno][1 KiB of bytes].
  constexpr size_t kMaxFile = kMaxSmallFile, kSlot = sizeof(int64_t) + kMaxFile;
  const size_t bytes = std::max<size_t>(kSlot, paths.size() * kSlot);
  void* map = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED) return ErrnoStatus("mmap", errno);
  char* slots = static_cast<char*>(map);
  std::vector<const char*> names;
  for (const std::string& p : paths) names.push_back(p.c_str());
  Status st = RunBounded("reading " + std::to_string(paths.size()) + " file(s) under " +
                             (paths.empty() ? std::string("?")
                                            : paths[0].substr(0, paths[0].rfind('/'))),
                         deadline, slots, [&](char* shared) {
                           for (size_t i = 0; i < names.size(); ++i) {
                             char* slot = shared + i * kSlot;
                             int64_t got;
                             int fd = open(names[i], O_RDONLY | O_CLOEXEC);
                             if (fd < 0) {
                               got = -errno;
                             } else {
                               ssize_t n = read(fd, slot + sizeof(int64_t), kMaxFile);
                               got = n < 0 ? -errno : n;
                               close(fd);
                             }
                             memcpy(slot, &got, sizeof(got));
                           }
                           return 0;
                         });
  std::vector<StatusOr<std::string>> out;
  if (st.ok()) {
    for (size_t i = 0; i < paths.size(); ++i) {
      const char* slot = slots + i * kSlot;
      int64_t got;
      memcpy(&got, slot, sizeof(got));
      if (got < 0)
        out.push_back(ErrnoStatus("open " + paths[i], static_cast<int>(-got)));
      else
        out.push_back(std::string(slot + sizeof(int64_t), static_cast<size_t>(got)));
    }
  }
  munmap(map, bytes);
  if (!st.ok()) return st;
  return out;
}

Status RealSystem::RemoveSmallFile(const std::string& path,
                                   std::chrono::milliseconds deadline) const {
  const std::string parent = path.substr(0, path.rfind('/'));
  const std::string grandparent = parent.substr(0, parent.rfind('/'));
  return RunBounded("removing " + path, deadline, nullptr, [&](char*) {
    if (unlink(path.c_str()) != 0 && errno != ENOENT) return errno;
    // The last node out removes the directories; the others find them not empty.
    for (const std::string* d : {&parent, &grandparent}) {
      if (d->size() <= 1) break;
      if (rmdir(d->c_str()) != 0) {
        if (errno == ENOTEMPTY || errno == EEXIST || errno == EBUSY) break;
        if (errno != ENOENT) return errno;
      }
    }
    return 0;
  });
}

std::unique_ptr<System> MakeRealSystem(const std::string& root) {
  return std::make_unique<RealSystem>(root);
}

}  // namespace coord::env_check
