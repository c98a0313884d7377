// Mutual TLS of the control plane, end to end with real processes: coordd and a
// coord-agent serve with certificates of a test CA; coordctl and raw gRPC
// clients come with good, missing, foreign, expired and wrong-role certificates.
// Only the good ones get an answer, and coordctl says why the others did not.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include "common/certs.h"
#include "common/fs.h"
#include "common/rpc_util.h"
#include "proto/agent.grpc.pb.h"
#include "proto/coordinator.grpc.pb.h"
#include "tests/support/files.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace coord::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = CreateCa("tls-test", 30);
    ASSERT_TRUE(ca.ok()) << ca.status().ToString();
    ca_ = *ca;
    int64_t now = static_cast<int64_t>(std::time(nullptr));
    // Servers: the agent on 127.0.0.2, coordd on 127.0.0.1 (its cert names it).
    Install("server", "node", Issue(ca_, "127.0.0.2", CertRole::kNode, {"127.0.0.2"}), ca_);
    Install("server", "coordinator", Issue(ca_, "coordd", CertRole::kCoordinator, {"127.0.0.1"}),
            ca_);
    // Clients. Each directory is what `coordctl --tls-dir` reads.
    Install("alice", "user", Issue(ca_, "alice", CertRole::kUser, {}), ca_);
    auto other_ca = CreateCa("elsewhere", 30);
    ASSERT_TRUE(other_ca.ok());
    // Trusts our servers, but holds a certificate of another CA.
    Install("mallory", "user", Issue(*other_ca, "mallory", CertRole::kUser, {}), ca_);
    IssueOptions old{"bob", CertRole::kUser, {}};
    old.not_before = now - 3000;  // inside the CA's validity, which starts an hour back
    old.not_after = now - 60;
    auto expired = IssueCertificate(ca_, old);
    ASSERT_TRUE(expired.ok());
    Install("expired", "user", *expired, ca_);
    // A node's certificate used as a client (a compromised node).
    Install("node", "user", Issue(ca_, "node9", CertRole::kNode, {"node9"}), ca_);
    ASSERT_TRUE(MakeDirs(dir_.File("empty")).ok());

    std::string tls = dir_.File("server");
    coordd_.Start({BinPath("coordd"), "--listen", "127.0.0.1:0", "--state-dir", dir_.File("coordd"),
                   "--port-file", dir_.File("coordd.port"), "--tls-ca", tls + "/ca.crt",
                   "--tls-cert", tls + "/coordinator.crt"},
                  dir_.File("coordd.log"));
    agent_.Start({BinPath("coord-agent"), "--listen", "127.0.0.2:0", "--state-dir",
                  dir_.File("agent"), "--port-file", dir_.File("agent.port"), "--tls-ca",
                  tls + "/ca.crt", "--tls-cert", tls + "/node.crt"},
                 dir_.File("agent.log"));
    std::string cp = WaitForFile(dir_.File("coordd.port"), 10000);
    std::string ap = WaitForFile(dir_.File("agent.port"), 10000);
    ASSERT_FALSE(cp.empty()) << ReadAll(dir_.File("coordd.log"));
    ASSERT_FALSE(ap.empty()) << ReadAll(dir_.File("agent.log"));
    coordd_addr_ = "127.0.0.1:" + std::to_string(std::stoi(cp));
    agent_addr_ = "127.0.0.2:" + std::to_string(std::stoi(ap));
    ASSERT_TRUE(WriteTextFile(dir_.File("hosts.txt"), agent_addr_ + "\n"));
  }

  void TearDown() override {
    agent_.Stop();
    coordd_.Stop();
    if (HasFailure()) {
      std::cerr << "--- coordd.log\n"
                << ReadAll(dir_.File("coordd.log")) << "--- agent.log\n"
                << ReadAll(dir_.File("agent.log"));
    }
  }

  static PemPair Issue(const PemPair& ca, const std::string& name, CertRole role,
                       std::vector<std::string> sans) {
    auto pair = IssueCertificate(ca, {name, role, std::move(sans)});
    EXPECT_TRUE(pair.ok()) << pair.status().ToString();
    return pair.ok() ? *pair : PemPair();
  }

  void Install(const std::string& dir, const std::string& name, const PemPair& pair,
               const PemPair& trusted_ca) {
    std::string d = dir_.File(dir);
    ASSERT_TRUE(MakeDirs(d).ok());
    ASSERT_TRUE(WriteTextFile(d + "/ca.crt", trusted_ca.cert_pem));
    ASSERT_TRUE(WriteTextFile(d + "/" + name + ".crt", pair.cert_pem));
    ASSERT_TRUE(WriteTextFile(d + "/" + name + ".key", pair.key_pem));
  }

  // coordctl with $COORD_TLS_DIR (where people keep their certificates); a
  // directory without them means plaintext, as it would on loopback.
  RunResult Ctl(const std::string& tls_dir, std::vector<std::string> args) {
    args.insert(args.begin(), {BinPath("coordctl"), "--coordinator", coordd_addr_});
    return RunCommand(args, {{"COORD_TLS_DIR", dir_.File(tls_dir)}}, 60000);
  }

  // A raw gRPC channel: root = our CA; client certificate from `dir` unless empty.
  std::shared_ptr<grpc::Channel> RawChannel(const std::string& target, const std::string& dir,
                                            const std::string& name) {
    RpcSecurity sec;
    sec.tls = true;
    sec.ca_pem = ca_.cert_pem;
    if (!dir.empty()) {
      sec.cert_pem = ReadAll(dir_.File(dir) + "/" + name + ".crt");
      sec.key_pem = ReadAll(dir_.File(dir) + "/" + name + ".key");
    }
    return MakeChannel(target, sec);
  }

  grpc::Status PingAgent(std::shared_ptr<grpc::Channel> channel) {
    auto stub = agent::Agent::NewStub(channel);
    auto ctx = ContextWithDeadline(5000);
    agent::PingReply reply;
    return stub->Ping(ctx.get(), agent::PingRequest(), &reply);
  }

  grpc::Status ListJobs(std::shared_ptr<grpc::Channel> channel) {
    auto stub = coordinator::Coordinator::NewStub(channel);
    auto ctx = ContextWithDeadline(5000);
    coordinator::ListJobsReply reply;
    return stub->ListJobs(ctx.get(), coordinator::ListJobsRequest(), &reply);
  }

  TempDir dir_;
  PemPair ca_;
  Process coordd_, agent_;
  std::string coordd_addr_, agent_addr_;
};

TEST_F(TlsTest, AUserCertificateRunsAJobThroughCoorddAndTheAgent) {
  // coordd talks to the agent with its coordinator certificate; we talk to coordd.
  std::string spec = dir_.File("job.json");
  ASSERT_TRUE(
      WriteTextFile(spec, nlohmann::json{{"name", "tls"},
                                         {"launch",
                                          {{"nproc_per_node", 2},
                                           {"command", {BinPath("rank_probe"), "--print", "2"}},
                                           {"kill_grace_s", 1}}}}
                              .dump()));
  RunResult start =
      Ctl("alice", {"start", "--hosts", dir_.File("hosts.txt"), "--config", spec, "--follow"});
  EXPECT_EQ(start.exit_code, 0) << start.out << start.err;
  RunResult status = Ctl("alice", {"status", "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_EQ(nlohmann::json::parse(status.out).value("state", ""), "SUCCEEDED") << status.out;
  // Straight to the agent too (coordctl check), with the same certificate.
  RunResult check = Ctl("alice", {"check", "--hosts", dir_.File("hosts.txt"), "--json"});
  EXPECT_THAT(check.out, Not(HasSubstr("unreachable"))) << check.out << check.err;
  EXPECT_TRUE(PingAgent(RawChannel(agent_addr_, "alice", "user")).ok());
}

TEST_F(TlsTest, NoCertificateIsRefusedByBothServers) {
  // No client certificate at all: the TLS handshake itself fails.
  grpc::Status to_agent = PingAgent(RawChannel(agent_addr_, "", ""));
  grpc::Status to_coordd = ListJobs(RawChannel(coordd_addr_, "", ""));
  EXPECT_EQ(to_agent.error_code(), grpc::StatusCode::UNAVAILABLE) << to_agent.error_message();
  EXPECT_EQ(to_coordd.error_code(), grpc::StatusCode::UNAVAILABLE) << to_coordd.error_message();
  // Plaintext (no certificates found) from coordctl: refused, and it says why.
  RunResult r = Ctl("empty", {"jobs"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, HasSubstr("requires TLS"));
  r = Ctl("empty", {"check", "--hosts", dir_.File("hosts.txt")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.out + r.err, HasSubstr("unreachable"));
}

TEST_F(TlsTest, ACertificateOfAnotherCaIsRefusedByBothServers) {
  EXPECT_EQ(PingAgent(RawChannel(agent_addr_, "mallory", "user")).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ListJobs(RawChannel(coordd_addr_, "mallory", "user")).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  RunResult r = Ctl("mallory", {"jobs"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, HasSubstr("refused our certificate"));
  EXPECT_THAT(r.err, HasSubstr("user.crt: not signed by this cluster's CA"));
  r = Ctl("mallory", {"check", "--hosts", dir_.File("hosts.txt")});
  EXPECT_THAT(r.out, HasSubstr("the agent at " + agent_addr_ + " refused our certificate"));
}

TEST_F(TlsTest, AnExpiredCertificateIsRefusedWithAMessageThatSaysSo) {
  EXPECT_EQ(PingAgent(RawChannel(agent_addr_, "expired", "user")).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ListJobs(RawChannel(coordd_addr_, "expired", "user")).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  RunResult r = Ctl("expired", {"jobs"});
  EXPECT_EQ(r.exit_code, 3);
  // Refused by the server, and which file expired when.
  EXPECT_THAT(r.err, HasSubstr("the coordd at " + coordd_addr_ + " refused our certificate"));
  EXPECT_THAT(r.err,
              HasSubstr(dir_.File("expired") + "/user.crt: certificate has expired (not after"));
  r = Ctl("expired", {"check", "--hosts", dir_.File("hosts.txt")});
  EXPECT_THAT(r.out, HasSubstr("the agent at " + agent_addr_ + " refused our certificate"));
  EXPECT_THAT(r.out, HasSubstr("certificate has expired"));
}

TEST_F(TlsTest, RolesLimitWhoMayCall) {
  // A node certificate cannot be a client (no clientAuth): refused in the handshake.
  EXPECT_EQ(PingAgent(RawChannel(agent_addr_, "node", "user")).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  RunResult r = Ctl("node", {"jobs"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, HasSubstr("is a node certificate"));
  // coordd's certificate is good for agents, but coordd itself serves users only.
  EXPECT_TRUE(PingAgent(RawChannel(agent_addr_, "server", "coordinator")).ok());
  grpc::Status s = ListJobs(RawChannel(coordd_addr_, "server", "coordinator"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("role 'coordinator'"));
  EXPECT_THAT(ReadAll(dir_.File("coordd.log")),
              HasSubstr("refused a call from certificate CN=coordd"));
}

TEST(TlsStartupTest, ADaemonOffLoopbackNeedsCertificatesOrInsecure) {
  TempDir dir;
  // 0.0.0.0 reaches other machines: without certificates the agent refuses to start.
  RunResult r =
      RunCommand({BinPath("coord-agent"), "--listen", "0.0.0.0:0", "--state-dir", dir.File("s1"),
                  "--tls-ca", dir.File("none/ca.crt"), "--tls-cert", dir.File("none/node.crt")},
                 {}, 20000);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err + r.out, HasSubstr("none/node.crt"));
  r = RunCommand({BinPath("coordd"), "--listen", "0.0.0.0:0", "--state-dir", dir.File("s2")}, {},
                 20000);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err + r.out, HasSubstr("no TLS certificate"));
  EXPECT_THAT(r.err + r.out, HasSubstr("--insecure"));
  // --insecure is honoured, loudly.
  Process agent;
  ASSERT_TRUE(agent.Start({BinPath("coord-agent"), "--listen", "0.0.0.0:0", "--state-dir",
                           dir.File("s3"), "--port-file", dir.File("port"), "--insecure"},
                          dir.File("agent.log")));
  EXPECT_FALSE(WaitForFile(dir.File("port"), 10000).empty()) << ReadAll(dir.File("agent.log"));
  EXPECT_THAT(ReadAll(dir.File("agent.log")), HasSubstr("--insecure: plaintext gRPC"));
  agent.Stop();
}

}  // namespace
}  // namespace coord::testing

namespace coord::testing {
namespace {

// coordctl certs with bad input: exit 2 or 1 with a message that says what to do.
TEST(CertsCliTest, BadInputGetsAClearError) {
  TempDir dir;
  auto certs = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {BinPath("coordctl"), "certs"});
    return RunCommand(args, {{"COORD_TLS_DIR", dir.File("tls")}}, 30000);
  };
  RunResult r = certs({"issue", "node01", "--role", "node"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("no CA in " + dir.File("tls")));
  EXPECT_THAT(r.err, HasSubstr("coordctl certs init"));
  ASSERT_EQ(certs({"init"}).exit_code, 0);
  r = certs({"init"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("already holds a CA"));
  r = certs({"issue", "node01", "--role", "admin"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("expected node, coordinator or user"));
  r = certs({"issue", "../evil", "--role", "node"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("must be a plain name"));
  r = certs({"issue", "node01", "--role", "node", "--days", "0"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--days"));
  ASSERT_EQ(certs({"issue", "node01", "--role", "node"}).exit_code, 0);
  r = certs({"issue", "node01", "--role", "node"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("already exists; pass --force"));
  ASSERT_TRUE(WriteTextFile(dir.File("junk.crt"), "not a certificate\n"));
  r = certs({"show", dir.File("junk.crt")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("not a PEM certificate"));
  r = certs({"frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("expected init, issue or show"));
}

}  // namespace
}  // namespace coord::testing
