// The hosts file: one node per line, in node-rank order.
//   host                 agent on the default port (7071)
//   host:port            agent on that port ([v6addr]:port for IPv6)
//   host slots=N         DeepSpeed's form: at most N ranks on that node
//   host ssh_port=2222 ssh_user=ops   how `coordctl provision` / `kill --ssh` log in
//   # comment            blank lines and comments are ignored (also after a host)
// Errors name the file, the line number and the line's text. Parsing is pure;
// name resolution is a separate step (ResolveHosts) so tests need no DNS.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace coord {

constexpr int kDefaultAgentPort = 7071;
// The most nodes one coordd supervises (its scale is measured up to 1,250 nodes x 8
// ranks). A hosts file with more is refused at once, naming the limit: without it a
// stray 100,000-line file tied coordd up resolving and dialling every line.
constexpr int kMaxHosts = 4096;
constexpr int kMaxErrorsListed = 20;

struct HostEntry {
  std::string host;  // as written (name or address, without brackets)
  int port = kDefaultAgentPort;
  int slots = 0;     // 0: not given
  int ssh_port = 0;  // 0: not given (SSH's default, 22)
  std::string ssh_user;  // empty: not given (the local user name)
  int line = 0;      // 1-based line in the file, for messages
  // "host:port" (or "[v6]:port"), the gRPC target for the agent.
  std::string Target() const;
};

// Parses the file's text. `path` is only used in messages.
// Fails on: no host at all, more than kMaxHosts hosts, a malformed line, a bad port or
// slots value, unknown key=value options, and the same host:port twice (naming both
// lines). At most kMaxErrorsListed problems are listed, then how many more there were.
StatusOr<std::vector<HostEntry>> ParseHostfile(const std::string& text, const std::string& path);
StatusOr<std::vector<HostEntry>> LoadHostfile(const std::string& path);

// Every host must resolve (getaddrinfo); the error names the line.
Status ResolveHosts(const std::vector<HostEntry>& hosts, const std::string& path);

}  // namespace coord
