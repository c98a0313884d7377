// SSH login flags, inventory and connector (see ssh_hosts.h).
#include "coordinator/cli/ssh_hosts.h"

#include <iostream>

#include "playbooks/runner/local_host.h"
#include "playbooks/runner/ssh_session.h"

namespace coord::cli {

namespace po = boost::program_options;

void AddSshOptions(po::options_description* options, SshFlags* f) {
  options->add_options()("user", po::value(&f->user),
                         "SSH login (default: $USER; a host's ssh_user= wins)")(
      "ssh-port", po::value(&f->port)->default_value(f->port),
      "SSH port (a host's ssh_port= wins)")(
      "identity,i", po::value(&f->identity),
      "private key file (default: ssh-agent, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa)")(
      "known-hosts", po::value(&f->known_hosts),
      "known_hosts file to verify host keys with (default: ~/.ssh/known_hosts)")(
      "connect-timeout", po::value(&f->connect_timeout_s)->default_value(f->connect_timeout_s),
      "seconds to connect and log in to a host")(
      "connection", po::value(&f->connection)->default_value(f->connection),
      "ssh, or local (run on this machine, for a single-node setup)")(
      "forks", po::value(&f->forks)->default_value(f->forks), "hosts worked on at a time")(
      "max-fail-percent", po::value(&f->max_fail_percent)->default_value(f->max_fail_percent),
      "stop starting hosts once more than this share of them failed (0..100)");
}

Status ValidateSshFlags(const SshFlags& f) {
  if (f.port < 1 || f.port > 65535) return InvalidArgument("--ssh-port: expected 1..65535");
  if (f.connect_timeout_s <= 0 || f.connect_timeout_s > 600) {
    return InvalidArgument("--connect-timeout: expected 0..600 seconds");
  }
  if (f.connection != "ssh" && f.connection != "local") {
    return InvalidArgument("--connection: expected ssh or local, got '" + f.connection + "'");
  }
  if (f.forks < 1 || f.forks > 1024) return InvalidArgument("--forks: expected 1..1024");
  if (f.max_fail_percent < 0 || f.max_fail_percent > 100) {
    return InvalidArgument("--max-fail-percent: expected 0..100");
  }
  return Status::Ok();
}

std::vector<playbooks::InventoryHost> InventoryFromHosts(const std::vector<HostEntry>& hosts,
                                                         const SshFlags& flags) {
  std::vector<playbooks::InventoryHost> out;
  for (const HostEntry& h : hosts) {
    playbooks::InventoryHost inv;
    inv.name = h.host;
    inv.address = h.host;
    inv.ssh_port = h.ssh_port ? h.ssh_port : flags.port;
    inv.ssh_user = h.ssh_user.empty() ? flags.user : h.ssh_user;
    inv.vars["agent_port"] = std::to_string(h.port);
    out.push_back(std::move(inv));
  }
  return out;
}

playbooks::Connector MakeConnector(const SshFlags& flags) {
  if (flags.connection == "local") {
    return [](const playbooks::InventoryHost& host)
               -> StatusOr<std::unique_ptr<playbooks::RemoteHost>> {
      return std::unique_ptr<playbooks::RemoteHost>(new playbooks::LocalHost(host.name));
    };
  }
  return [flags](const playbooks::InventoryHost& host)
             -> StatusOr<std::unique_ptr<playbooks::RemoteHost>> {
    playbooks::SshOptions o;
    o.user = host.ssh_user;
    o.port = host.ssh_port;
    o.identity_file = flags.identity;
    o.known_hosts_file = flags.known_hosts;
    o.connect_timeout =
        std::chrono::milliseconds(static_cast<int64_t>(flags.connect_timeout_s * 1000));
    ASSIGN_OR_RETURN(auto session, playbooks::SshSession::Connect(host.name, host.address, o));
    return std::unique_ptr<playbooks::RemoteHost>(std::move(session));
  };
}

std::unique_ptr<playbooks::Reporter> MakeReporter(bool json) {
  if (json) return std::make_unique<playbooks::JsonReporter>(&std::cout);
  return std::make_unique<playbooks::TextReporter>(&std::cout);
}

}  // namespace coord::cli
