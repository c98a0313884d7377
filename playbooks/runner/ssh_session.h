// The SSH transport of `coordctl provision`: one authenticated libssh2 session to
// one host, run by the playbook runner's per-host thread. Host keys are checked
// against known_hosts the way OpenSSH does ("[host]:port" for ports other than
// 22, hashed entries too); every step has a deadline. Needs on the host: an
// OpenSSH-compatible sshd with the sftp subsystem, /bin/sh and GNU coreutils
// (`timeout`, `mv`), which is every Debian machine.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/status.h"
#include "playbooks/runner/remote_host.h"

namespace coord::playbooks {

struct SshOptions {
  std::string user;  // empty: $USER (or the name of getuid())
  int port = 22;
  // The private key to log in with. Empty: ssh-agent, then ~/.ssh/id_ed25519,
  // ~/.ssh/id_ecdsa, ~/.ssh/id_rsa (the ones that exist). Keys without passphrase.
  std::string identity_file;
  // The agent's socket; empty: $SSH_AUTH_SOCK. Only used when identity_file is empty.
  std::string agent_socket;
  std::string known_hosts_file;  // empty: ~/.ssh/known_hosts
  // TCP connect + SSH handshake + host key check + authentication, together.
  std::chrono::milliseconds connect_timeout{10000};
};

// One connection to one host. Not thread-safe: one thread uses a session at a
// time (the runner gives each host its own thread); any number of sessions may
// run in parallel threads. After a transport failure (connection lost, a deadline
// hit mid-operation) the session answers every call with an error: reconnect.
class SshSession final : public RemoteHost {
 public:
  // name: the inventory name (used in messages); address: what to connect to
  // (host name or IP). Errors, all prefixed "name (address:port): ":
  //   Unavailable       cannot connect, or the connection broke
  //   DeadlineExceeded  connect_timeout passed
  //   PermissionDenied  host key unknown or CHANGED, or no key was accepted
  static StatusOr<std::unique_ptr<SshSession>> Connect(const std::string& name,
                                                       const std::string& address,
                                                       const SshOptions& options);
  ~SshSession() override;
  SshSession(const SshSession&) = delete;
  SshSession& operator=(const SshSession&) = delete;

  const std::string& name() const override;
  // The command runs as `/bin/sh -c command` under a remote `timeout`, in its own
  // process group: at the deadline that group gets SIGTERM, 2 s later SIGKILL,
  // even if this process or the connection is gone by then, and Run returns
  // DeadlineExceeded. A nonzero exit status is data, not an error. A process that
  // left the group (setsid, daemons) is not killed.
  StatusOr<CommandResult> Run(const std::string& command,
                              std::chrono::milliseconds timeout) override;
  // SFTP into a temporary file beside remote_path (created 0600), chmod to
  // `mode`, fsync, then rename(2) over remote_path. The directory must exist.
  Status Upload(const std::string& content, const std::string& remote_path, int mode,
                std::chrono::milliseconds timeout) override;

  // The server's host key as OpenSSH prints it: "SHA256:<base64, no padding>".
  const std::string& host_key_fingerprint() const;
  // The user name the session is logged in as.
  const std::string& user() const;

 private:
  struct Impl;  // libssh2 state; defined in ssh_session.cc
  explicit SshSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace coord::playbooks
