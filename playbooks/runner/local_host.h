// LocalHost: a RemoteHost that is this machine. It is `coordctl provision
// --connection local` and the host of the runner's unit tests (one LocalHost per
// fake inventory host). Stateless, so any number of threads may use one.
// Limits: commands run as the calling user (become still goes through sudo),
// and the upload timeout is not enforced (a local write does not hang on a peer).
#pragma once

#include <chrono>
#include <string>

#include "playbooks/runner/remote_host.h"

namespace coord::playbooks {

class LocalHost : public RemoteHost {
 public:
  explicit LocalHost(std::string name) : name_(std::move(name)) {}

  const std::string& name() const override { return name_; }
  // `/bin/sh -c command` in a new process group with stdin from /dev/null;
  // stdout and stderr are read together with poll(), so a command that fills
  // one pipe while we wait on the other cannot deadlock. At the deadline the
  // whole group is SIGKILLed and reaped, and the result is DeadlineExceeded.
  // A background process that keeps the pipes open holds the call until the
  // deadline, as it would hold an SSH channel.
  StatusOr<CommandResult> Run(const std::string& command,
                              std::chrono::milliseconds timeout) override;
  // A temporary file beside `remote_path` (same file system), written, fsynced,
  // chmod'ed to `mode` (not subject to the umask), then renamed over it. The
  // directory must exist.
  Status Upload(const std::string& content, const std::string& remote_path, int mode,
                std::chrono::milliseconds timeout) override;

 private:
  std::string name_;
};

}  // namespace coord::playbooks
