// The cluster's certificate authority (OpenSSL's libcrypto): create a CA,
// issue node / coordinator / user certificates signed by it, read what a
// certificate says, and verify one against the CA with a reason people can act
// on ("expired on ...", "signed by another CA"). coordctl certs uses it to
// write files; the gRPC edge (tls.h) uses it to explain refused connections.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace coord {

// What a certificate may do. The role is the subject's OU; the extended key
// usage follows it, so TLS itself refuses a user certificate as a server.
//   node         the agent on a node: serves gRPC (serverAuth)
//   coordinator  coordd: serves coordctl and calls agents (serverAuth, clientAuth)
//   user         a person or script running coordctl (clientAuth)
enum class CertRole { kNode, kCoordinator, kUser };
const char* CertRoleName(CertRole role);
StatusOr<CertRole> ParseCertRole(const std::string& name);

struct PemPair {
  std::string cert_pem;
  std::string key_pem;
};

struct IssueOptions {
  std::string name;  // subject CN
  CertRole role = CertRole::kNode;
  std::vector<std::string> sans;  // DNS names or IP addresses (each becomes DNS: or IP:)
  // Validity window in seconds since the epoch; 0 means now / now + 365 days.
  int64_t not_before = 0;
  int64_t not_after = 0;
};

// A new self-signed CA (EC P-256 key, CA:TRUE, keyCertSign), valid `days`.
StatusOr<PemPair> CreateCa(const std::string& cluster_name, int days);
// A certificate for `options.name`, signed by the CA, with a fresh P-256 key.
StatusOr<PemPair> IssueCertificate(const PemPair& ca, const IssueOptions& options);

struct CertInfo {
  std::string common_name;
  std::string role;               // the OU ("node", "coordinator", "user"), or "" if none
  std::string issuer;             // the issuer's CN
  std::vector<std::string> sans;  // "DNS:x" / "IP:1.2.3.4"
  int64_t not_before = 0;         // seconds since the epoch
  int64_t not_after = 0;
  std::string sha256_fingerprint;  // hex with colons, as `openssl x509 -fingerprint -sha256`
  bool is_ca = false;
};
// Reads the first certificate of a PEM text.
StatusOr<CertInfo> InspectCertificate(const std::string& cert_pem);

// Verifies `cert_pem` against the CA at time `now` (seconds since the epoch; 0:
// now). The error says why in words, e.g. "certificate has expired (not after
// 2026-01-02 03:04:05 UTC)" or "not signed by this cluster's CA".
Status VerifyCertificate(const std::string& cert_pem, const std::string& ca_pem, int64_t now = 0);
// Whether the private key belongs to the certificate.
Status CheckKeyMatchesCertificate(const std::string& cert_pem, const std::string& key_pem);

// The files of a certificate directory (tls.h's TlsPathsIn layout).
// LoadCaDir reads DIR/ca.crt and DIR/ca.key; the error says how to create them.
StatusOr<PemPair> LoadCaDir(const std::string& dir);
// Writes DIR/NAME.key (0600 from the start) then DIR/NAME.crt, each atomically.
Status WritePemPair(const PemPair& pair, const std::string& dir, const std::string& name);

// A PKCS#12 bundle (DER) of a certificate, its key and the CA, for a browser's
// certificate import or `curl --cert-type P12`; encrypted with `password` ("" allowed).
StatusOr<std::string> MakePkcs12(const PemPair& pair, const std::string& ca_pem,
                                 const std::string& friendly_name, const std::string& password);

// "2026-01-02 03:04:05 UTC".
std::string FormatUtc(int64_t seconds);

}  // namespace coord
