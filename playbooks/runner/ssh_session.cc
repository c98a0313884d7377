// SshSession: libssh2 (1.10) in non-blocking mode, driven by poll() on the
// socket, so that every step (connect, handshake, auth, exec, read, SFTP) obeys a
// deadline and stdout/stderr are drained together. Runs in the playbook runner's
// per-host thread; sessions share nothing but libssh2_init().
#include "playbooks/runner/ssh_session.h"

#include <libssh2.h>
#include <libssh2_sftp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <random>
#include <utility>
#include <vector>

namespace coord::playbooks {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// At a Run deadline the remote `timeout` sends SIGTERM, then SIGKILL this much
// later; we wait that long plus kConfirmGrace for the channel to report it.
constexpr int kKillAfterSeconds = 2;
constexpr milliseconds kConfirmGrace{3000};
// Bound on each blocking wait while tearing handles down (destructors).
constexpr long kTeardownTimeoutMs = 2000;
// OpenSSH's default host key order: ed25519 first, so a known_hosts written by
// `ssh`/`ssh-keyscan` usually holds the key this session is offered.
constexpr char kHostKeyPrefs[] =
    "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,"
    "rsa-sha2-512,rsa-sha2-256,ssh-rsa";

// --- small helpers ------------------------------------------------------------

// `wanted` (comma-separated) less what this libssh2 does not support, in order.
// libssh2 1.10's method_pref drops an unknown method with a memcpy over the rest of its
// own copy of the list (overlapping: undefined behaviour, ASan's memcpy-param-overlap).
std::string SupportedMethods(LIBSSH2_SESSION* session, int method_type, const std::string& wanted) {
  const char** algs = nullptr;
  const int n = libssh2_session_supported_algs(session, method_type, &algs);
  std::vector<std::string> supported(algs, algs + std::max(n, 0));
  if (algs != nullptr) libssh2_free(session, algs);
  std::string out;
  for (size_t begin = 0; begin <= wanted.size();) {
    const size_t end = std::min(wanted.find(',', begin), wanted.size());
    const std::string name = wanted.substr(begin, end - begin);
    if (std::find(supported.begin(), supported.end(), name) != supported.end()) {
      out += (out.empty() ? "" : ",") + name;
    }
    begin = end + 1;
  }
  return out;
}

int InitLibssh2Once() {
  static std::once_flag once;
  static int rc = 0;
  std::call_once(once, [] { rc = libssh2_init(0); });
  return rc;
}

std::string Base64(const unsigned char* data, size_t n, bool pad) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = data[i] << 16;
    if (i + 1 < n) v |= data[i + 1] << 8;
    if (i + 2 < n) v |= data[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    if (i + 1 < n) out += kAlphabet[(v >> 6) & 63];
    if (i + 2 < n) out += kAlphabet[v & 63];
  }
  if (pad)
    while (out.size() % 4) out += '=';
  return out;
}

// 'text' for /bin/sh: single quotes, each ' written as '\''.
std::string ShellQuote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string RandomHex(int bytes) {
  static const char kHex[] = "0123456789abcdef";
  std::random_device rd;
  std::string out;
  for (int i = 0; i < bytes; ++i) {
    unsigned v = rd() & 0xff;
    out += kHex[v >> 4];
    out += kHex[v & 15];
  }
  return out;
}

// Linux signal numbers (x86-64 and arm64 agree), for exit statuses 128+N.
const char* SignalName(int sig) {
  static const char* const kNames[] = {
      nullptr, "HUP",  "INT",  "QUIT", "ILL",    "TRAP",   "ABRT",  "BUS",  "FPE",  "KILL", "USR1",
      "SEGV",  "USR2", "PIPE", "ALRM", "TERM",   "STKFLT", "CHLD",  "CONT", "STOP", "TSTP", "TTIN",
      "TTOU",  "URG",  "XCPU", "XFSZ", "VTALRM", "PROF",   "WINCH", "IO",   "PWR",  "SYS"};
  return sig > 0 && sig < 32 ? kNames[sig] : nullptr;
}

struct HostKeyType {
  int libssh2_type;
  const char* name;  // as in known_hosts
  int knownhost_bits;
};
constexpr HostKeyType kHostKeyTypes[] = {
    {LIBSSH2_HOSTKEY_TYPE_RSA, "ssh-rsa", LIBSSH2_KNOWNHOST_KEY_SSHRSA},
    {LIBSSH2_HOSTKEY_TYPE_DSS, "ssh-dss", LIBSSH2_KNOWNHOST_KEY_SSHDSS},
    {LIBSSH2_HOSTKEY_TYPE_ECDSA_256, "ecdsa-sha2-nistp256", LIBSSH2_KNOWNHOST_KEY_ECDSA_256},
    {LIBSSH2_HOSTKEY_TYPE_ECDSA_384, "ecdsa-sha2-nistp384", LIBSSH2_KNOWNHOST_KEY_ECDSA_384},
    {LIBSSH2_HOSTKEY_TYPE_ECDSA_521, "ecdsa-sha2-nistp521", LIBSSH2_KNOWNHOST_KEY_ECDSA_521},
    {LIBSSH2_HOSTKEY_TYPE_ED25519, "ssh-ed25519", LIBSSH2_KNOWNHOST_KEY_ED25519},
};
HostKeyType HostKeyTypeOf(int type) {
  for (const HostKeyType& t : kHostKeyTypes)
    if (t.libssh2_type == type) return t;
  return {type, "unknown", LIBSSH2_KNOWNHOST_KEY_UNKNOWN};
}

struct Account {
  std::string user;
  std::string home;
};
Account LocalAccount() {
  Account a;
  if (const char* u = getenv("USER")) a.user = u;
  if (const char* h = getenv("HOME")) a.home = h;
  if (a.user.empty() || a.home.empty()) {
    passwd pw{};
    passwd* found = nullptr;
    std::vector<char> buf(16384);
    if (getpwuid_r(getuid(), &pw, buf.data(), buf.size(), &found) == 0 && found) {
      if (a.user.empty()) a.user = pw.pw_name;
      if (a.home.empty()) a.home = pw.pw_dir;
    }
  }
  return a;
}

bool FileExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

std::string SecondsText(milliseconds ms) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%lld.%03lld", static_cast<long long>(ms.count() / 1000),
           static_cast<long long>(ms.count() % 1000));
  return buf;
}

// --- RAII owners --------------------------------------------------------------

// Puts the session in blocking mode with a bounded wait for the life of the
// scope: a destructor must finish a close that may need the network, but never hang.
class BlockingScope {
 public:
  explicit BlockingScope(LIBSSH2_SESSION* s) : s_(s) {
    libssh2_session_set_blocking(s_, 1);
    libssh2_session_set_timeout(s_, kTeardownTimeoutMs);
  }
  ~BlockingScope() {
    libssh2_session_set_timeout(s_, 0);
    libssh2_session_set_blocking(s_, 0);
  }

 private:
  LIBSSH2_SESSION* s_;
};

// Owns a channel / SFTP handle; freeing one may need the network (BlockingScope).
template <typename T, int (*Free)(T*)>
class Owned {
 public:
  Owned(LIBSSH2_SESSION* s, T* h) : s_(s), h_(h) {}
  ~Owned() {
    if (!h_) return;
    BlockingScope blocking(s_);
    Free(h_);
  }
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  T* get() const { return h_; }
  T* release() { return std::exchange(h_, nullptr); }

 private:
  LIBSSH2_SESSION* s_;
  T* h_;
};
using Channel = Owned<LIBSSH2_CHANNEL, libssh2_channel_free>;
using Sftp = Owned<LIBSSH2_SFTP, libssh2_sftp_shutdown>;
using SftpFile = Owned<LIBSSH2_SFTP_HANDLE, libssh2_sftp_close_handle>;

struct KnownHostsFree {
  void operator()(LIBSSH2_KNOWNHOSTS* k) const { libssh2_knownhost_free(k); }
};
struct AgentFree {
  void operator()(LIBSSH2_AGENT* a) const {
    libssh2_agent_disconnect(a);
    libssh2_agent_free(a);
  }
};

}  // namespace

// --- the session state ----------------------------------------------------------

struct SshSession::Impl {
  std::string name, address, user, known_hosts_file, fingerprint;
  int port = 22;
  int fd = -1;
  LIBSSH2_SESSION* session = nullptr;
  std::string broken;  // why the session can no longer be used; empty while usable

  ~Impl() {
    if (session) {
      // A broken connection is shut down first so that the frees below fail fast
      // instead of waiting for a peer that will not answer.
      if (!broken.empty() && fd >= 0) shutdown(fd, SHUT_RDWR);
      BlockingScope blocking(session);
      if (broken.empty()) libssh2_session_disconnect(session, "bye");
      libssh2_session_free(session);
    }
    if (fd >= 0) close(fd);
  }

  // "node01 (127.0.0.2:2222): "
  std::string Prefix() const {
    const bool v6 = address.find(':') != std::string::npos;
    return name + " (" + (v6 ? "[" + address + "]" : address) + ":" + std::to_string(port) + "): ";
  }
  // How known_hosts names this host: OpenSSH writes "[host]:port" unless port 22.
  std::string KnownHostsName() const {
    return port == 22 ? address : "[" + address + "]:" + std::to_string(port);
  }

  std::string LastError() const {
    char* msg = nullptr;
    int len = 0;
    libssh2_session_last_error(session, &msg, &len, 0);
    return msg && len > 0 ? std::string(msg, len) : "unknown libssh2 error";
  }

  // Marks the session unusable (the error is returned to the caller as well).
  Status Break(Status st) {
    if (broken.empty()) broken = st.message();
    if (fd >= 0) shutdown(fd, SHUT_RDWR);
    return st;
  }
  Status CheckUsable() const {
    if (broken.empty()) return Status::Ok();
    return Unavailable(Prefix() + "the connection is unusable after an earlier failure (" + broken +
                       "); reconnect");
  }

  // An error from libssh2 rc. Errors that leave the transport intact (a refused
  // channel request, an SFTP status) keep the session; all others break it.
  Status Fail(int rc, const std::string& what) {
    Status st = Unavailable(Prefix() + what + ": " + LastError());
    if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL || rc == LIBSSH2_ERROR_CHANNEL_REQUEST_DENIED ||
        rc == LIBSSH2_ERROR_CHANNEL_FAILURE)
      return st;
    return Break(st);
  }

  // Waits until the socket is ready in the directions libssh2 is blocked on.
  // At the deadline the operation in flight is abandoned, which leaves libssh2's
  // state machines half-way, so the session breaks.
  Status WaitSocket(Clock::time_point deadline, const std::string& what) {
    const auto now = Clock::now();
    if (now >= deadline) return Break(DeadlineExceeded(Prefix() + what + ": deadline exceeded"));
    const int dirs = libssh2_session_block_directions(session);
    pollfd p{fd, 0, 0};
    if (dirs & LIBSSH2_SESSION_BLOCK_INBOUND) p.events |= POLLIN;
    if (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND) p.events |= POLLOUT;
    auto wait = std::chrono::ceil<milliseconds>(deadline - now);
    if (p.events == 0) {  // EAGAIN without a direction: retry soon rather than spin
      p.events = POLLIN;
      wait = std::min(wait, milliseconds(10));
    }
    if (poll(&p, 1, static_cast<int>(wait.count())) < 0 && errno != EINTR)
      return Break(Unavailable(Prefix() + what + ": poll: " + strerror(errno)));
    return Status::Ok();
  }

  // Calls op (returning a libssh2 rc) until it stops saying EAGAIN.
  template <typename Op>
  Status Call(Op op, Clock::time_point deadline, const std::string& what) {
    for (;;) {
      const int rc = op();
      if (rc == LIBSSH2_ERROR_EAGAIN) {
        RETURN_IF_ERROR(WaitSocket(deadline, what));
        continue;
      }
      return rc < 0 ? Fail(rc, what) : Status::Ok();
    }
  }
  // The same for calls that return a handle (NULL + last errno EAGAIN: retry).
  template <typename T, typename Op>
  StatusOr<T*> CallPtr(Op op, Clock::time_point deadline, const std::string& what) {
    for (;;) {
      if (T* p = op()) return p;
      const int rc = libssh2_session_last_errno(session);
      if (rc != LIBSSH2_ERROR_EAGAIN) return Fail(rc, what);
      RETURN_IF_ERROR(WaitSocket(deadline, what));
    }
  }

  Status ConnectTcp(Clock::time_point deadline);
  Status Handshake(Clock::time_point deadline);
  Status VerifyHostKey();
  Status Authenticate(const SshOptions& options, const std::string& home,
                      Clock::time_point deadline);
  Status TryKeyFile(const std::string& path, Clock::time_point deadline, std::string* tried);
  Status TryAgent(const std::string& socket, Clock::time_point deadline, std::string* tried);
  StatusOr<CommandResult> Run(const std::string& command, milliseconds timeout);
  Status Upload(const std::string& content, const std::string& path, int mode,
                milliseconds timeout);
  Status SftpWriteFile(LIBSSH2_SFTP* sftp, const std::string& tmp, const std::string& content,
                       int mode, Clock::time_point deadline);
};

// --- connect: TCP, handshake, host key, authentication --------------------------

Status SshSession::Impl::ConnectTcp(Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  // Name resolution has no deadline of its own; inventories name hosts that
  // /etc/hosts or a local resolver answer at once.
  const int gai = getaddrinfo(address.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (gai != 0) return Unavailable(Prefix() + "cannot resolve: " + gai_strerror(gai));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owner(res, freeaddrinfo);
  std::string last_error = "no address";
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    int s = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0) {
      last_error = std::string("socket: ") + strerror(errno);
      continue;
    }
    int err = connect(s, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : errno;
    if (err == EINPROGRESS) {
      pollfd p{s, POLLOUT, 0};
      const auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now());
      const int r = left.count() > 0 ? poll(&p, 1, static_cast<int>(left.count())) : 0;
      socklen_t len = sizeof(err);
      if (r == 0) {
        close(s);
        return DeadlineExceeded(Prefix() + "TCP connect timed out");
      }
      if (r < 0 || getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    }
    if (err == 0) {
      const int one = 1;  // request/response traffic: do not wait to fill segments
      setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      fd = s;
      return Status::Ok();
    }
    last_error = std::string("connect: ") + strerror(err);
    close(s);
  }
  return Unavailable(Prefix() + last_error);
}

Status SshSession::Impl::Handshake(Clock::time_point deadline) {
  session = libssh2_session_init();
  if (!session) return Internal(Prefix() + "libssh2_session_init failed");
  libssh2_session_set_blocking(session, 0);
  const std::string prefs = SupportedMethods(session, LIBSSH2_METHOD_HOSTKEY, kHostKeyPrefs);
  if (!prefs.empty()) libssh2_session_method_pref(session, LIBSSH2_METHOD_HOSTKEY, prefs.c_str());
  return Call([&] { return libssh2_session_handshake(session, fd); }, deadline, "SSH handshake");
}

Status SshSession::Impl::VerifyHostKey() {
  size_t key_len = 0;
  int key_type = 0;
  const char* key = libssh2_session_hostkey(session, &key_len, &key_type);
  const char* sha = libssh2_hostkey_hash(session, LIBSSH2_HOSTKEY_HASH_SHA256);
  if (!key || !sha) return Break(Internal(Prefix() + "the server sent no host key"));
  fingerprint = "SHA256:" + Base64(reinterpret_cast<const unsigned char*>(sha), 32, false);
  const HostKeyType type = HostKeyTypeOf(key_type);
  const std::string key_b64 = Base64(reinterpret_cast<const unsigned char*>(key), key_len, true);
  const std::string presented = std::string(type.name) + " key " + fingerprint;

  // Lines go to libssh2 one at a time: its readfile stops at the first line it
  // cannot parse (@cert-authority, sk-* keys), dropping every entry after it.
  std::unique_ptr<LIBSSH2_KNOWNHOSTS, KnownHostsFree> hosts(libssh2_knownhost_init(session));
  if (!hosts) return Break(Internal(Prefix() + "libssh2_knownhost_init failed"));
  std::ifstream in(known_hosts_file);
  const bool exists = in.is_open();
  int skipped = 0;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("@revoked", 0) == 0) {
      // Revoked for any host name: refuse if it is the key presented now.
      if ((" " + line + " ").find(" " + key_b64 + " ") != std::string::npos)
        return Break(PermissionDenied(Prefix() + "the host presents " + presented +
                                      ", which is marked @revoked in " + known_hosts_file));
      continue;
    }
    if (line.rfind("@", 0) == 0 || libssh2_knownhost_readline(hosts.get(), line.data(), line.size(),
                                                              LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0)
      ++skipped;
  }

  // Checked by the exact name OpenSSH records (port -1): checkp with a port also
  // falls back to a bare "host" entry, which OpenSSH never uses for port != 22.
  const std::string host_name = KnownHostsName();
  libssh2_knownhost* found = nullptr;
  const int rc = libssh2_knownhost_checkp(
      hosts.get(), host_name.c_str(), -1, key, key_len,
      LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | type.knownhost_bits, &found);
  if (rc == LIBSSH2_KNOWNHOST_CHECK_MATCH) return Status::Ok();
  if (rc == LIBSSH2_KNOWNHOST_CHECK_MISMATCH) {
    return Break(PermissionDenied(
        Prefix() + "WARNING: the host key for " + host_name +
        " has CHANGED since it was recorded in " + known_hosts_file + "! The host now presents " +
        presented +
        ". Someone may be intercepting this connection (man-in-the-middle), or the host was "
        "reinstalled. Refusing to connect. If the change is expected, verify the new fingerprint "
        "on the host (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then replace the old entry: "
        "ssh-keygen -R '" +
        host_name + "' -f " + known_hosts_file + " && ssh-keyscan -p " + std::to_string(port) +
        " " + address + " >> " + known_hosts_file));
  }
  if (rc != LIBSSH2_KNOWNHOST_CHECK_NOTFOUND)
    return Break(Internal(Prefix() + "checking " + known_hosts_file + ": " + LastError()));
  std::string note = exists ? "" : " (the file does not exist)";
  if (skipped > 0) note += " (" + std::to_string(skipped) + " of its lines could not be read)";
  return Break(PermissionDenied(Prefix() + "host " + host_name + " is not in " + known_hosts_file +
                                note + "; it presents " + presented +
                                ". Refusing an unverified host. Verify that fingerprint on "
                                "the host (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then "
                                "record the key: ssh-keyscan -p " +
                                std::to_string(port) + " " + address + " >> " + known_hosts_file));
}

// Each Try* returns OK when authenticated, and otherwise appends what it tried to
// *tried; an error Status only for failures that end the attempt (deadline, lost
// connection).
Status SshSession::Impl::TryKeyFile(const std::string& path, Clock::time_point deadline,
                                    std::string* tried) {
  if (!tried->empty()) *tried += "; ";
  if (!FileExists(path)) {
    *tried += "key file " + path + " (does not exist)";
    return Status::Ok();
  }
  int rc;
  do {
    // "" rather than NULL: never let OpenSSL prompt on a terminal for a passphrase.
    rc = libssh2_userauth_publickey_fromfile_ex(session, user.c_str(), user.size(), nullptr,
                                                path.c_str(), "");
    if (rc == LIBSSH2_ERROR_EAGAIN) RETURN_IF_ERROR(WaitSocket(deadline, "authentication"));
  } while (rc == LIBSSH2_ERROR_EAGAIN);
  if (rc == 0) return Status::Ok();
  if (rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED || rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED) {
    *tried += "key file " + path + " (not accepted)";
  } else if (rc == LIBSSH2_ERROR_FILE || rc == LIBSSH2_ERROR_METHOD_NOT_SUPPORTED) {
    *tried += "key file " + path + " (cannot be used: " + LastError() + ")";
  } else {
    return Fail(rc, "authentication with " + path);
  }
  return Status::Ok();
}

Status SshSession::Impl::TryAgent(const std::string& socket, Clock::time_point deadline,
                                  std::string* tried) {
  if (!tried->empty()) *tried += "; ";
  std::unique_ptr<LIBSSH2_AGENT, AgentFree> agent(libssh2_agent_init(session));
  if (!agent) {
    *tried += "ssh-agent (libssh2_agent_init failed)";
    return Status::Ok();
  }
  libssh2_agent_set_identity_path(agent.get(), socket.c_str());
  // The agent's own socket is local and blocking; only the server side can EAGAIN.
  if (libssh2_agent_connect(agent.get()) != 0 || libssh2_agent_list_identities(agent.get()) != 0) {
    *tried += "ssh-agent at " + socket + " (cannot be reached: " + LastError() + ")";
    return Status::Ok();
  }
  int offered = 0;
  libssh2_agent_publickey* prev = nullptr;
  libssh2_agent_publickey* identity = nullptr;
  while (libssh2_agent_get_identity(agent.get(), &identity, prev) == 0) {
    prev = identity;
    ++offered;
    int rc;
    do {
      rc = libssh2_agent_userauth(agent.get(), user.c_str(), identity);
      if (rc == LIBSSH2_ERROR_EAGAIN) RETURN_IF_ERROR(WaitSocket(deadline, "authentication"));
    } while (rc == LIBSSH2_ERROR_EAGAIN);
    if (rc == 0) return Status::Ok();
    if (rc != LIBSSH2_ERROR_AUTHENTICATION_FAILED && rc != LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED &&
        rc != LIBSSH2_ERROR_AGENT_PROTOCOL)
      return Fail(rc, "authentication through ssh-agent");
  }
  *tried += "ssh-agent at " + socket + " (" + std::to_string(offered) + " key" +
            (offered == 1 ? "" : "s") + ", none accepted)";
  return Status::Ok();
}

Status SshSession::Impl::Authenticate(const SshOptions& options, const std::string& home,
                                      Clock::time_point deadline) {
  // Asking for the methods also tries "none", which a server may accept.
  char* methods = nullptr;
  for (;;) {
    methods = libssh2_userauth_list(session, user.c_str(), user.size());
    if (methods || libssh2_userauth_authenticated(session)) break;
    const int rc = libssh2_session_last_errno(session);
    if (rc != LIBSSH2_ERROR_EAGAIN) return Fail(rc, "asking for authentication methods");
    RETURN_IF_ERROR(WaitSocket(deadline, "authentication"));
  }
  if (!methods) return Status::Ok();
  const std::string server_methods = methods;

  std::string tried;
  auto done = [&] { return libssh2_userauth_authenticated(session) != 0; };
  if (!options.identity_file.empty()) {
    RETURN_IF_ERROR(TryKeyFile(options.identity_file, deadline, &tried));
  } else {
    const char* env_sock = getenv("SSH_AUTH_SOCK");
    const std::string sock =
        !options.agent_socket.empty() ? options.agent_socket : (env_sock ? env_sock : "");
    if (!sock.empty()) RETURN_IF_ERROR(TryAgent(sock, deadline, &tried));
    for (const char* file : {"id_ed25519", "id_ecdsa", "id_rsa"}) {
      if (done()) break;
      const std::string path = home + "/.ssh/" + file;
      if (FileExists(path)) RETURN_IF_ERROR(TryKeyFile(path, deadline, &tried));
    }
    if (tried.empty())
      tried = "nothing: no ssh-agent ($SSH_AUTH_SOCK unset) and no key in " + home + "/.ssh";
  }
  if (done()) return Status::Ok();
  return Break(PermissionDenied(Prefix() + "authentication as user '" + user + "' failed; tried: " +
                                tried + ". The server accepts: " + server_methods));
}

// --- Run -------------------------------------------------------------------------

// How the exit status comes back. libssh2 1.10 returns 0 from
// libssh2_channel_get_exit_status when no exit-status message arrived, so that
// value cannot tell success from "unknown". Instead the command runs under a
// small /bin/sh wrapper that prints "\n<nonce> <status>\n" on stderr once the
// command has exited; Run strips that line and takes the status from it. No line
// means no status: an error. A status 128+N is reported as death by signal N, the
// way sh reports it (a command that exits 128+N itself reads the same). If the
// wrapper itself is killed, sshd's exit-signal message (which libssh2 does report
// reliably) fills exit_signal.
//
// The deadline: libssh2 1.10 cannot send a signal over the channel, so the
// wrapper runs the command under coreutils `timeout`, which puts it in its own
// process group and at the deadline signals that whole group (TERM, then KILL).
// This holds even if this process dies. The remote timer starts later than ours,
// so a status that the timer caused always arrives after our deadline.
std::string WrapCommand(const std::string& command, const std::string& nonce,
                        milliseconds remaining) {
  // $1: seconds, $2: nonce, $3: the command.
  static const std::string kWrapper =
      R"(command -v timeout >/dev/null 2>&1 || { printf '\n%s notimeout\n' "$2" >&2; exit 127; }
timeout -k )" +
      std::to_string(kKillAfterSeconds) + R"( "$1" /bin/sh -c "$3"
s=$?
printf '\n%s %d\n' "$2" "$s" >&2
exit "$s"
)";
  return "exec /bin/sh -c " + ShellQuote(kWrapper) + " coord-run " +
         SecondsText(std::max(remaining, milliseconds(1))) + " " + nonce + " " +
         ShellQuote(command);
}

StatusOr<CommandResult> SshSession::Impl::Run(const std::string& command, milliseconds timeout) {
  RETURN_IF_ERROR(CheckUsable());
  const auto deadline = Clock::now() + timeout;
  // After the deadline we keep reading until the remote kill is confirmed.
  const auto confirm_deadline = deadline + std::chrono::seconds(kKillAfterSeconds) + kConfirmGrace;
  ASSIGN_OR_RETURN(LIBSSH2_CHANNEL * raw,
                   CallPtr<LIBSSH2_CHANNEL>([&] { return libssh2_channel_open_session(session); },
                                            deadline, "opening a channel"));
  Channel channel(session, raw);
  const std::string nonce = RandomHex(16);
  const auto remaining = std::chrono::floor<milliseconds>(deadline - Clock::now());
  if (remaining.count() <= 0) return DeadlineExceeded(Prefix() + "deadline passed before exec");
  const std::string wrapped = WrapCommand(command, nonce, remaining);
  RETURN_IF_ERROR(Call([&] { return libssh2_channel_exec(raw, wrapped.c_str()); }, deadline,
                       "starting the command"));
  // No stdin: a command that reads it sees EOF instead of hanging.
  RETURN_IF_ERROR(
      Call([&] { return libssh2_channel_send_eof(raw); }, confirm_deadline, "sending EOF"));

  // Drain stdout and stderr in turns until EOF: the channel has one flow-control
  // window for both, so reading only one of them could stall the other.
  CommandResult result;
  std::vector<char> buf(1 << 16);
  for (;;) {
    bool progress = false;
    for (int stream : {0, SSH_EXTENDED_DATA_STDERR}) {
      std::string& out = stream == 0 ? result.stdout_text : result.stderr_text;
      for (;;) {
        const ssize_t n = libssh2_channel_read_ex(raw, stream, buf.data(), buf.size());
        if (n > 0) {
          out.append(buf.data(), n);
          progress = true;
          continue;
        }
        if (n == 0 || n == LIBSSH2_ERROR_EAGAIN) break;
        return Fail(static_cast<int>(n), "connection lost while the command ran");
      }
    }
    if (libssh2_channel_eof(raw)) break;
    if (!progress) {
      Status st = WaitSocket(confirm_deadline, "waiting for the command");
      if (st.code() == StatusCode::kDeadlineExceeded) {
        return Break(DeadlineExceeded(
            Prefix() + "command did not finish within " + SecondsText(timeout) +
            " s, and its end was not confirmed within " +
            SecondsText(std::chrono::ceil<milliseconds>(confirm_deadline - deadline)) +
            " s more; it may still be running"));
      }
      RETURN_IF_ERROR(st);
    }
  }
  // Judged when the output ended: the remote timer fires no earlier than our
  // deadline, so a command it stopped always ends after `deadline`.
  const bool late = Clock::now() > deadline;
  // exit-status / exit-signal come before the server's CLOSE.
  RETURN_IF_ERROR(Call([&] { return libssh2_channel_close(raw); }, confirm_deadline, "closing"));
  RETURN_IF_ERROR(
      Call([&] { return libssh2_channel_wait_closed(raw); }, confirm_deadline, "closing"));
  char* sig = nullptr;
  size_t sig_len = 0;
  libssh2_channel_get_exit_signal(raw, &sig, &sig_len, nullptr, nullptr, nullptr, nullptr);
  const std::string wrapper_signal = sig ? std::string(sig, sig_len) : "";
  if (sig) libssh2_free(session, sig);

  std::string& err = result.stderr_text;
  if (err.find("\n" + nonce + " notimeout\n") != std::string::npos)
    return FailedPrecondition(Prefix() + "`timeout` (GNU coreutils) is not installed");
  const std::string marker = "\n" + nonce + " ";
  const size_t at = err.rfind(marker);
  const size_t end = at == std::string::npos ? at : err.find('\n', at + marker.size());
  if (end != std::string::npos) {
    const int status = atoi(err.substr(at + marker.size(), end - at - marker.size()).c_str());
    err.erase(at, end + 1 - at);
    const char* name = status > 128 ? SignalName(status - 128) : nullptr;
    if (name) {
      result.exit_signal = name;
    } else {
      result.exit_status = status;
    }
  } else if (!wrapper_signal.empty()) {
    result.exit_signal = wrapper_signal;
  } else if (!late) {
    return Unavailable(Prefix() + "no exit status came back (the remote shell or sshd died)");
  }
  if (late) {
    const std::string how =
        result.exit_signal.empty() && result.exit_status < 0 ? "no status came back"
        : result.exit_signal.empty() ? "exit status " + std::to_string(result.exit_status)
                                     : "killed by SIG" + result.exit_signal;
    return DeadlineExceeded(Prefix() + "command did not finish within " + SecondsText(timeout) +
                            " s; its process group was sent SIGTERM, then SIGKILL (" + how + ")");
  }
  return result;
}

// --- Upload ------------------------------------------------------------------------

Status SshSession::Impl::SftpWriteFile(LIBSSH2_SFTP* sftp, const std::string& tmp,
                                       const std::string& content, int mode,
                                       Clock::time_point deadline) {
  auto sftp_error = [&](const std::string& what) {
    const unsigned long code = libssh2_sftp_last_error(sftp);
    const std::string msg = Prefix() + what + " " + tmp + ": " + LastError() + " (SFTP status " +
                            std::to_string(code) + ")";
    if (code == LIBSSH2_FX_PERMISSION_DENIED) return PermissionDenied(msg);
    if (code == LIBSSH2_FX_NO_SUCH_FILE || code == LIBSSH2_FX_NO_SUCH_PATH) return NotFound(msg);
    return Unavailable(msg);
  };
  // Created 0600 so nobody reads it before the final mode is set.
  auto open = CallPtr<LIBSSH2_SFTP_HANDLE>(
      [&] {
        return libssh2_sftp_open_ex(sftp, tmp.c_str(), tmp.size(),
                                    LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL, 0600,
                                    LIBSSH2_SFTP_OPENFILE);
      },
      deadline, "creating " + tmp);
  if (!open.ok())
    return open.status().code() == StatusCode::kUnavailable && broken.empty()
               ? sftp_error("creating")
               : open.status();
  SftpFile file(session, *open);
  size_t off = 0;
  while (off < content.size()) {
    // On EAGAIN libssh2 wants the same buffer again; off only moves by what it took.
    const ssize_t n = libssh2_sftp_write(file.get(), content.data() + off,
                                         std::min<size_t>(content.size() - off, 1 << 20));
    if (n == LIBSSH2_ERROR_EAGAIN) {
      RETURN_IF_ERROR(WaitSocket(deadline, "writing " + tmp));
    } else if (n < 0) {
      Status st = Fail(static_cast<int>(n), "writing " + tmp);
      return broken.empty() ? sftp_error("writing") : st;
    } else {
      off += static_cast<size_t>(n);
    }
  }
  LIBSSH2_SFTP_ATTRIBUTES attrs{};
  attrs.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS;
  attrs.permissions = static_cast<unsigned long>(mode & 07777);
  Status st = Call([&] { return libssh2_sftp_fsetstat(file.get(), &attrs); }, deadline,
                   "setting the mode of " + tmp);
  if (!st.ok()) return broken.empty() ? sftp_error("chmod") : st;
  // Durable before it becomes visible under the real name. Servers without the
  // fsync@openssh.com extension answer with an SFTP status, which is fine.
  st = Call([&] { return libssh2_sftp_fsync(file.get()); }, deadline, "fsync " + tmp);
  if (!st.ok() && !broken.empty()) return st;
  LIBSSH2_SFTP_HANDLE* h = file.release();
  st = Call([&] { return libssh2_sftp_close_handle(h); }, deadline, "closing " + tmp);
  return st.ok() || !broken.empty() ? st : sftp_error("closing");
}

Status SshSession::Impl::Upload(const std::string& content, const std::string& path, int mode,
                                milliseconds timeout) {
  RETURN_IF_ERROR(CheckUsable());
  const size_t slash = path.rfind('/');
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (base.empty() || base == "." || base == "..")
    return InvalidArgument(Prefix() + "upload: not a file path: '" + path + "'");
  const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  // Hidden, unique, and short enough for NAME_MAX whatever the base name.
  const std::string tmp = dir + "." + base.substr(0, 200) + ".coord-" + RandomHex(6) + ".tmp";
  const auto deadline = Clock::now() + timeout;

  ASSIGN_OR_RETURN(
      LIBSSH2_SFTP * raw,
      CallPtr<LIBSSH2_SFTP>([&] { return libssh2_sftp_init(session); }, deadline, "starting SFTP"));
  Sftp sftp(session, raw);
  Status st = SftpWriteFile(raw, tmp, content, mode, deadline);
  if (st.ok()) {
    // libssh2 1.10 speaks only SFTP v3 rename, which OpenSSH refuses over an
    // existing file (posix-rename@openssh.com needs libssh2 1.11), so the final
    // step is mv, i.e. rename(2): atomic within the directory. -T: never move
    // into remote_path if that is a directory.
    const auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now());
    auto mv = Run("mv -fT -- " + ShellQuote(tmp) + " " + ShellQuote(path), left);
    if (!mv.ok()) {
      st = mv.status();
    } else if (!mv->ok()) {
      st = Unavailable(Prefix() + "renaming " + tmp + " to " + path + ": " + mv->stderr_text);
    }
  }
  if (!st.ok() && broken.empty()) {  // best effort: leave no temporary file behind
    const auto cleanup = Clock::now() + milliseconds(2000);
    (void)Call([&] { return libssh2_sftp_unlink_ex(raw, tmp.c_str(), tmp.size()); }, cleanup,
               "removing " + tmp);
  }
  if (st.ok()) return st;
  // "node01 (...): upload to /x: <what failed>"
  std::string msg = st.message();
  const std::string prefix = Prefix();
  if (msg.rfind(prefix, 0) == 0) msg.erase(0, prefix.size());
  return Status(st.code(), prefix + "upload to " + path + ": " + msg);
}

// --- SshSession -------------------------------------------------------------------

SshSession::SshSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SshSession::~SshSession() = default;

StatusOr<std::unique_ptr<SshSession>> SshSession::Connect(const std::string& name,
                                                          const std::string& address,
                                                          const SshOptions& options) {
  const auto deadline = Clock::now() + options.connect_timeout;
  auto impl = std::make_unique<Impl>();
  impl->name = name;
  impl->address = address;
  impl->port = options.port;
  if (const int rc = InitLibssh2Once(); rc != 0)
    return Internal(impl->Prefix() + "libssh2_init failed: " + std::to_string(rc));
  const Account account = LocalAccount();
  impl->user = options.user.empty() ? account.user : options.user;
  impl->known_hosts_file = options.known_hosts_file.empty() ? account.home + "/.ssh/known_hosts"
                                                            : options.known_hosts_file;
  if (impl->user.empty()) return InvalidArgument(impl->Prefix() + "no user name to log in as");
  RETURN_IF_ERROR(impl->ConnectTcp(deadline));
  RETURN_IF_ERROR(impl->Handshake(deadline));
  RETURN_IF_ERROR(impl->VerifyHostKey());
  RETURN_IF_ERROR(impl->Authenticate(options, account.home, deadline));
  return std::unique_ptr<SshSession>(new SshSession(std::move(impl)));
}

const std::string& SshSession::name() const { return impl_->name; }
const std::string& SshSession::host_key_fingerprint() const { return impl_->fingerprint; }
const std::string& SshSession::user() const { return impl_->user; }

StatusOr<CommandResult> SshSession::Run(const std::string& command, milliseconds timeout) {
  return impl_->Run(command, timeout);
}

Status SshSession::Upload(const std::string& content, const std::string& remote_path, int mode,
                          milliseconds timeout) {
  return impl_->Upload(content, remote_path, mode, timeout);
}

}  // namespace coord::playbooks
