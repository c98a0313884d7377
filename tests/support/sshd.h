// Test support: a real OpenSSH sshd for the SSH transport's integration tests.
// Listens itself on address:0 and runs `/usr/sbin/sshd -i` (inetd mode) per
// accepted connection, with a throwaway ed25519 host key and user keys in a
// TempDir. Needs root (sshd drops privileges itself) and openssh-server. Stops
// only the sshd processes it started, by PID.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/temp_dir.h"

namespace coord::testing {

// Thread-safety: the accept thread and the test thread share only pids_ (mu_);
// everything else is set before the thread starts and read-only after.
class Sshd {
 public:
  // Generates the keys, writes sshd_config, listens on address:0 and starts
  // accepting. nullptr on failure, with the reason in *error.
  static std::unique_ptr<Sshd> Start(const std::string& address, std::string* error);
  ~Sshd();  // stops accepting, SIGTERM then SIGKILL to the sshd processes it started
  Sshd(const Sshd&) = delete;
  Sshd& operator=(const Sshd&) = delete;

  const std::string& address() const { return address_; }
  int port() const { return port_; }
  // A private key in authorized_keys, and one that is not (for wrong-key tests).
  const std::string& user_key_path() const { return user_key_; }
  const std::string& other_key_path() const { return other_key_; }
  // "ssh-ed25519 AAAA..." (type and base64, no comment).
  const std::string& host_public_key() const { return host_public_key_; }
  // The known_hosts line OpenSSH writes for this server: "[addr]:port ssh-ed25519 AAAA...".
  std::string KnownHostsLine() const;
  bool WriteKnownHosts(const std::string& path) const;
  // The sshd processes serving connections now: each `sshd -i` this fixture
  // started and is still running, and their sshd descendants (privsep children).
  std::vector<pid_t> ConnectionPids();
  int connections_accepted() const { return accepted_.load(); }
  // sshd's log (LogLevel VERBOSE, all connections); print it when a test fails.
  const std::string& log_path() const { return log_; }
  std::string Log() const;
  std::string File(const std::string& name) const { return dir_.File(name); }

 private:
  Sshd() = default;
  bool Setup(const std::string& address, std::string* error);
  void AcceptLoop();
  void Spawn(int conn);
  void ReapExited();  // mu_ held

  TempDir dir_;
  std::string address_, user_key_, other_key_, host_public_key_, config_, log_, stderr_log_;
  int port_ = 0;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};  // the destructor writes to wake_[1] to stop AcceptLoop
  std::thread acceptor_;
  std::atomic<int> accepted_{0};
  std::mutex mu_;
  std::vector<pid_t> pids_;  // guarded by mu_: started and not yet reaped
};

}  // namespace coord::testing
