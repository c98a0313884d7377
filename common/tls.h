// Transport security of the control plane: mutual TLS between coordctl, coordd
// and the agents, with certificates from the cluster CA (certs.h).
//
// Every end has the CA, its own certificate and key. Servers require a client
// certificate signed by the CA and then check the certificate's role (a node's
// certificate cannot command other agents). Plaintext is allowed only when the
// address is loopback (both ends are this machine) or with an explicit
// --insecure, and is logged as a warning either way except for loopback.
#pragma once

#include <string>
#include <vector>

#include "common/certs.h"
#include "common/status.h"

namespace coord {

struct TlsPaths {
  std::string ca;    // the cluster CA certificate
  std::string cert;  // this end's certificate
  std::string key;   // its private key
};

// What the command line said.
struct TlsSettings {
  TlsPaths paths;            // defaults already filled in by the program
  bool paths_given = false;  // a path came from the command line: a missing file is an error
  bool insecure = false;     // --insecure: plaintext even off loopback
};

// How one end protects its connections.
struct RpcSecurity {
  bool tls = false;
  std::string ca_pem, cert_pem, key_pem;
  TlsPaths paths;                         // for messages
  std::vector<CertRole> allowed_callers;  // servers: client roles accepted
  std::string peer_kind = "server";  // clients: what they talk to ("coordd", "agent"), for messages
};

// DIR/{ca.crt, NAME.crt, NAME.key}: how `coordctl certs` lays a directory out.
TlsPaths TlsPathsIn(const std::string& dir, const std::string& name);
// The key beside a certificate: "x.crt" -> "x.key", else the path + ".key".
std::string KeyPathFor(const std::string& cert_path);
// The defaults for a daemon: /etc/coord/tls/{ca.crt, NAME.crt, NAME.key}.
TlsPaths DaemonTlsPaths(const std::string& name);
// coordctl's defaults: $COORD_TLS_DIR (else ~/.coord/tls) /{ca.crt, user.crt, user.key};
// $COORD_TLS_CERT / $COORD_TLS_KEY / $COORD_TLS_CA override single files.
TlsPaths UserTlsPaths();
// The directory UserTlsPaths reads ($COORD_TLS_DIR, else ~/.coord/tls).
std::string UserTlsDir();

// Whether `host` is a loopback address or "localhost" (127.0.0.0/8, ::1).
bool IsLoopbackHost(const std::string& host);

// A daemon listening on `listen` ("host:port"): mTLS when the files exist (they
// must load, match and be valid now); plaintext on loopback without files;
// plaintext with a warning under --insecure; else an error that says what to do.
StatusOr<RpcSecurity> ServerSecurity(const TlsSettings& settings, const std::string& listen,
                                     const std::vector<CertRole>& allowed_callers,
                                     const std::string& program);
// The same rule for an HTTP endpoint (`flag` names it in messages: "--http-listen"):
// HTTPS with a client certificate of the CA when the files exist, plaintext on
// loopback or under --insecure, else an error that says what to do.
StatusOr<RpcSecurity> HttpServerSecurity(const TlsSettings& settings, const std::string& listen,
                                         const std::vector<CertRole>& allowed_callers,
                                         const std::string& program, const std::string& flag);
// A client of `target`: the same rule. An expired or foreign certificate of our
// own is not refused here (the server is the judge, and says why); it is
// reported by ExplainConnectFailure.
StatusOr<RpcSecurity> ClientSecurity(const TlsSettings& settings, const std::string& target,
                                     const std::string& program, const std::string& peer_kind);

// After an RPC to `target` failed as unreachable: connects once more with
// OpenSSL to say what TLS thinks, e.g. "the agent refused our certificate
// (certificate expired): /root/.coord/tls/user.crt expired on ...", "the
// server's certificate is not signed by our CA", "it speaks plaintext". Empty
// when TLS is not the problem (nothing listens, or the handshake works).
std::string ExplainConnectFailure(const std::string& target, const RpcSecurity& security,
                                  int timeout_ms = 3000);

}  // namespace coord
