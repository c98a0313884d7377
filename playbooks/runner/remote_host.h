// A host that playbook tasks run on. The SSH session (ssh_session.h) is the real
// one; local_host.h runs on this machine (`--connection local`, and the runner's
// unit tests). Every call has a deadline, so a stuck host cannot stall a run.
#pragma once

#include <chrono>
#include <string>

#include "common/status.h"

namespace coord::playbooks {

struct CommandResult {
  int exit_status = -1;     // the command's exit status (0..255)
  std::string exit_signal;  // "KILL", "TERM", ... when it died by a signal; exit_status is then -1
  std::string stdout_text;
  std::string stderr_text;
  bool ok() const { return exit_signal.empty() && exit_status == 0; }
};

class RemoteHost {
 public:
  virtual ~RemoteHost() = default;
  // The name as written in the inventory, for messages and output lines.
  virtual const std::string& name() const = 0;
  // Runs `command` with /bin/sh -c semantics on the host and returns its exit
  // status and whole output. An error Status only when the command's outcome is
  // unknown: the connection broke, the deadline passed (the command is then
  // killed as far as the transport can), or no exit status came back.
  virtual StatusOr<CommandResult> Run(const std::string& command,
                                      std::chrono::milliseconds timeout) = 0;
  // Writes `content` to `remote_path` with permission bits `mode`, atomically:
  // a temporary file beside it, then rename.
  virtual Status Upload(const std::string& content, const std::string& remote_path, int mode,
                        std::chrono::milliseconds timeout) = 0;
};

}  // namespace coord::playbooks
