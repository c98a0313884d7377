// The cluster CA (common/certs.h) against OpenSSL's own command line tool as an
// independent judge: what we issue verifies with `openssl verify`, says what we
// asked for, and the reasons we give for a refusal are the right ones.
#include "common/certs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <ctime>
#include <fstream>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace coord {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

int64_t Now() { return static_cast<int64_t>(std::time(nullptr)); }

class CertsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = CreateCa("test", 30);
    ASSERT_TRUE(ca.ok()) << ca.status().ToString();
    ca_ = *ca;
  }
  std::string Write(const std::string& name, const std::string& text) {
    std::string path = dir_.File(name);
    std::ofstream(path) << text;
    return path;
  }
  // `openssl verify` with the purpose a TLS peer would check.
  testing::RunResult OpensslVerify(const std::string& cert_pem, const std::string& purpose) {
    return testing::RunCommand({"openssl", "verify", "-purpose", purpose, "-CAfile",
                                Write("ca.crt", ca_.cert_pem), Write("leaf.crt", cert_pem)});
  }

  testing::TempDir dir_;
  PemPair ca_;
};

TEST_F(CertsTest, IssuedCertificatesVerifyWithOpensslForTheirRoleOnly) {
  IssueOptions node{"node01", CertRole::kNode, {"node01", "10.0.0.7"}};
  auto n = IssueCertificate(ca_, node);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(OpensslVerify(n->cert_pem, "sslserver").exit_code, 0);
  // A node's certificate cannot act as a TLS client: no other agent obeys it.
  EXPECT_NE(OpensslVerify(n->cert_pem, "sslclient").exit_code, 0);

  auto u = IssueCertificate(ca_, {"alice", CertRole::kUser, {}});
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(OpensslVerify(u->cert_pem, "sslclient").exit_code, 0);
  EXPECT_NE(OpensslVerify(u->cert_pem, "sslserver").exit_code, 0);

  auto c = IssueCertificate(ca_, {"coordd", CertRole::kCoordinator, {"coordd"}});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(OpensslVerify(c->cert_pem, "sslclient").exit_code, 0);
  EXPECT_EQ(OpensslVerify(c->cert_pem, "sslserver").exit_code, 0);

  EXPECT_TRUE(VerifyCertificate(n->cert_pem, ca_.cert_pem).ok());
  EXPECT_TRUE(CheckKeyMatchesCertificate(n->cert_pem, n->key_pem).ok());
  EXPECT_FALSE(CheckKeyMatchesCertificate(n->cert_pem, u->key_pem).ok());
}

TEST_F(CertsTest, InspectReadsNameRoleNamesAndValidity) {
  int64_t now = Now();
  IssueOptions o{"node02", CertRole::kNode, {"node02", "192.168.1.2", "::1"}};
  o.not_before = now - 60;
  o.not_after = now + 7200;
  auto pair = IssueCertificate(ca_, o);
  ASSERT_TRUE(pair.ok());
  auto info = InspectCertificate(pair->cert_pem);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->common_name, "node02");
  EXPECT_EQ(info->role, "node");
  EXPECT_EQ(info->issuer, "test CA");
  EXPECT_FALSE(info->is_ca);
  EXPECT_EQ(info->not_before, now - 60);
  EXPECT_EQ(info->not_after, now + 7200);
  EXPECT_THAT(info->sans, UnorderedElementsAre("DNS:node02", "IP:192.168.1.2", "IP:::1"));
  // The fingerprint is the one OpenSSL prints.
  auto r = testing::RunCommand({"openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in",
                                Write("c.crt", pair->cert_pem)});
  EXPECT_THAT(r.out, HasSubstr(info->sha256_fingerprint));
  auto ca_info = InspectCertificate(ca_.cert_pem);
  ASSERT_TRUE(ca_info.ok());
  EXPECT_TRUE(ca_info->is_ca);
}

TEST_F(CertsTest, RefusalsSayWhy) {
  int64_t now = Now();
  IssueOptions expired{"old", CertRole::kUser, {}};
  // Inside the CA's own validity (it is back-dated an hour).
  expired.not_before = now - 3000;
  expired.not_after = now - 60;
  auto e = IssueCertificate(ca_, expired);
  ASSERT_TRUE(e.ok());
  Status st = VerifyCertificate(e->cert_pem, ca_.cert_pem);
  EXPECT_EQ(st.code(), StatusCode::kPermissionDenied);
  EXPECT_THAT(st.message(), HasSubstr("expired"));
  EXPECT_THAT(st.message(), HasSubstr(FormatUtc(now - 60)));
  // ... and it was valid while it was.
  EXPECT_TRUE(VerifyCertificate(e->cert_pem, ca_.cert_pem, now - 1000).ok());

  IssueOptions future{"early", CertRole::kUser, {}};
  future.not_before = now + 3600;
  future.not_after = now + 7200;
  auto f = IssueCertificate(ca_, future);
  ASSERT_TRUE(f.ok());
  EXPECT_THAT(VerifyCertificate(f->cert_pem, ca_.cert_pem).message(), HasSubstr("not yet valid"));

  auto other_ca = CreateCa("other", 30);
  ASSERT_TRUE(other_ca.ok());
  auto foreign = IssueCertificate(*other_ca, {"mallory", CertRole::kUser, {}});
  ASSERT_TRUE(foreign.ok());
  EXPECT_THAT(VerifyCertificate(foreign->cert_pem, ca_.cert_pem).message(),
              HasSubstr("not signed by this cluster's CA"));
}

TEST_F(CertsTest, BadInputIsAnErrorNotACrash) {
  EXPECT_EQ(InspectCertificate("hello").status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(VerifyCertificate("x", ca_.cert_pem).ok());
  EXPECT_FALSE(IssueCertificate({ca_.cert_pem, "garbage"}, {"n", CertRole::kNode, {}}).ok());
  auto other_ca = CreateCa("other", 30);
  ASSERT_TRUE(other_ca.ok());
  EXPECT_THAT(IssueCertificate({ca_.cert_pem, other_ca->key_pem}, {"n", CertRole::kNode, {}})
                  .status()
                  .message(),
              HasSubstr("does not belong"));
  EXPECT_FALSE(IssueCertificate(ca_, {"", CertRole::kNode, {}}).ok());
  EXPECT_FALSE(IssueCertificate(ca_, {"n", CertRole::kNode, {"a,b"}}).ok());
  EXPECT_FALSE(ParseCertRole("admin").ok());
  EXPECT_EQ(*ParseCertRole("coordinator"), CertRole::kCoordinator);
}

// The browser bundle: `openssl pkcs12` opens it with the password (and only with it)
// and finds the certificate, its key and the CA.
TEST_F(CertsTest, Pkcs12BundleOpensWithOpenssl) {
  auto u = IssueCertificate(ca_, {"alice", CertRole::kUser, {}});
  ASSERT_TRUE(u.ok());
  auto p12 = MakePkcs12(*u, ca_.cert_pem, "alice", "s3cret");
  ASSERT_TRUE(p12.ok()) << p12.status().ToString();
  const std::string file = Write("alice.p12", *p12);
  testing::RunResult r = testing::RunCommand(
      {"openssl", "pkcs12", "-in", file, "-passin", "pass:s3cret", "-nodes", "-info"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("friendlyName: alice"));
  EXPECT_THAT(r.out, HasSubstr("subject=O = coord, OU = user, CN = alice"));
  EXPECT_THAT(r.out, HasSubstr("subject=O = coord, OU = ca, CN = test CA"));
  EXPECT_THAT(r.out, HasSubstr("BEGIN PRIVATE KEY"));
  EXPECT_NE(testing::RunCommand({"openssl", "pkcs12", "-in", file, "-passin", "pass:wrong",
                                 "-nodes"})
                .exit_code,
            0);
  auto other = IssueCertificate(ca_, {"bob", CertRole::kUser, {}});
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(MakePkcs12({u->cert_pem, other->key_pem}, ca_.cert_pem, "x", "").ok());
}

}  // namespace
}  // namespace coord
