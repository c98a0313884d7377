// What `coordctl provision` and `coordctl kill --ssh` share: the SSH login
// flags, the hosts file turned into the playbook runner's inventory, and the
// connector that opens one libssh2 session per host (or runs locally).
#pragma once

#include <boost/program_options.hpp>
#include <memory>
#include <string>
#include <vector>

#include "common/hostfile.h"
#include "playbooks/runner/report.h"
#include "playbooks/runner/runner.h"

namespace coord::cli {

struct SshFlags {
  std::string user;         // --user: default login (a host's ssh_user= wins)
  int port = 22;            // --ssh-port: default port (a host's ssh_port= wins)
  std::string identity;     // --identity: private key; empty: ssh-agent, ~/.ssh/id_*
  std::string known_hosts;  // --known-hosts: empty: ~/.ssh/known_hosts
  double connect_timeout_s = 10;
  std::string connection = "ssh";  // or "local": this machine, no SSH (one host only)
  int forks = 8;
  int max_fail_percent = 100;
};

void AddSshOptions(boost::program_options::options_description* options, SshFlags* flags);
// Checks ranges; the error names the flag.
Status ValidateSshFlags(const SshFlags& flags);

// One inventory host per hosts-file line: name and address are the host as
// written; the agent's port is the host var agent_port.
std::vector<playbooks::InventoryHost> InventoryFromHosts(const std::vector<HostEntry>& hosts,
                                                         const SshFlags& flags);
playbooks::Connector MakeConnector(const SshFlags& flags);
// Lines and a summary table on stdout, or (json) one document at the end.
std::unique_ptr<playbooks::Reporter> MakeReporter(bool json);

}  // namespace coord::cli
