// Cluster CA operations on OpenSSL 3 (see certs.h).
#include "common/certs.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <time.h>

#include <cstdio>
#include <ctime>
#include <memory>

#include "common/fs.h"

namespace coord {
namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;

struct RoleRow {
  CertRole role;
  const char* name;
  const char* extended_key_usage;
};
constexpr RoleRow kRoles[] = {
    {CertRole::kNode, "node", "serverAuth"},
    {CertRole::kCoordinator, "coordinator", "serverAuth,clientAuth"},
    {CertRole::kUser, "user", "clientAuth"},
};

// The newest OpenSSL error as text, and the queue cleared.
std::string OpenSslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  return buf;
}

Status SslFail(const std::string& what) { return Internal(what + ": " + OpenSslError()); }

StatusOr<X509Ptr> ReadCert(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    ERR_clear_error();
    return InvalidArgument("not a PEM certificate (expected -----BEGIN CERTIFICATE-----)");
  }
  return cert;
}

StatusOr<KeyPtr> ReadKey(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    ERR_clear_error();
    return InvalidArgument("not a PEM private key (expected -----BEGIN PRIVATE KEY-----)");
  }
  return key;
}

StatusOr<KeyPtr> NewKey() {
  KeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return SslFail("cannot generate a P-256 key");
  return key;
}

StatusOr<PemPair> ToPem(X509* cert, EVP_PKEY* key) {
  BioPtr cert_bio(BIO_new(BIO_s_mem()));
  BioPtr key_bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(cert_bio.get(), cert) ||
      !PEM_write_bio_PrivateKey(key_bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) {
    return SslFail("cannot write PEM");
  }
  PemPair out;
  char* data = nullptr;
  long n = BIO_get_mem_data(cert_bio.get(), &data);
  out.cert_pem.assign(data, static_cast<size_t>(n));
  n = BIO_get_mem_data(key_bio.get(), &data);
  out.key_pem.assign(data, static_cast<size_t>(n));
  return out;
}

Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) return SslFail(std::string("bad extension ") + OBJ_nid2sn(nid) + "=" + value);
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (!ok) return SslFail("cannot add extension");
  return Status::Ok();
}

// A certificate body: random 128-bit serial, subject, validity, public key.
StatusOr<X509Ptr> NewCert(const std::string& cn, const std::string& ou, int64_t not_before,
                          int64_t not_after, EVP_PKEY* key) {
  X509Ptr cert(X509_new());
  if (!cert || !X509_set_version(cert.get(), 2)) return SslFail("X509_new");
  unsigned char serial_bytes[16];
  if (RAND_bytes(serial_bytes, sizeof(serial_bytes)) != 1) return SslFail("RAND_bytes");
  serial_bytes[0] &= 0x7f;  // a positive serial
  BnPtr serial(BN_bin2bn(serial_bytes, sizeof(serial_bytes), nullptr));
  if (!serial || !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get()))) {
    return SslFail("serial");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  auto add_entry = [&](const char* field, const std::string& value) {
    return X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                      reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
                                      0) == 1;
  };
  if (!add_entry("O", "coord") || !add_entry("OU", ou) || !add_entry("CN", cn)) {
    return SslFail("subject name '" + cn + "'");
  }
  if (!ASN1_TIME_set(X509_getm_notBefore(cert.get()), static_cast<time_t>(not_before)) ||
      !ASN1_TIME_set(X509_getm_notAfter(cert.get()), static_cast<time_t>(not_after)) ||
      !X509_set_pubkey(cert.get(), key)) {
    return SslFail("validity / public key");
  }
  return cert;
}

int64_t AsnTimeToEpoch(const ASN1_TIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

bool IsIpAddress(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

}  // namespace

const char* CertRoleName(CertRole role) {
  for (const RoleRow& row : kRoles) {
    if (row.role == role) return row.name;
  }
  return "?";
}

StatusOr<CertRole> ParseCertRole(const std::string& name) {
  for (const RoleRow& row : kRoles) {
    if (name == row.name) return row.role;
  }
  return InvalidArgument("unknown role '" + name + "': expected node, coordinator or user");
}

std::string FormatUtc(int64_t seconds) {
  time_t t = static_cast<time_t>(seconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[64];
  strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

StatusOr<PemPair> CreateCa(const std::string& cluster_name, int days) {
  if (days <= 0) return InvalidArgument("CA validity must be at least 1 day");
  ASSIGN_OR_RETURN(KeyPtr key, NewKey());
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  // Back-dated an hour so nodes whose clocks lag a little accept it at once.
  ASSIGN_OR_RETURN(X509Ptr cert, NewCert(cluster_name + " CA", "ca", now - 3600,
                                         now + int64_t{days} * 86400, key.get()));
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
  RETURN_IF_ERROR(
      AddExtension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  RETURN_IF_ERROR(
      AddExtension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign"));
  RETURN_IF_ERROR(AddExtension(cert.get(), cert.get(), NID_subject_key_identifier, "hash"));
  if (!X509_sign(cert.get(), key.get(), EVP_sha256())) return SslFail("signing the CA");
  return ToPem(cert.get(), key.get());
}

StatusOr<PemPair> IssueCertificate(const PemPair& ca, const IssueOptions& options) {
  if (options.name.empty()) return InvalidArgument("a certificate needs a name");
  ASSIGN_OR_RETURN(X509Ptr ca_cert, ReadCert(ca.cert_pem));
  ASSIGN_OR_RETURN(KeyPtr ca_key, ReadKey(ca.key_pem));
  if (X509_check_private_key(ca_cert.get(), ca_key.get()) != 1) {
    ERR_clear_error();
    return InvalidArgument("the CA key does not belong to the CA certificate");
  }
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  int64_t not_before = options.not_before ? options.not_before : now - 3600;
  int64_t not_after = options.not_after ? options.not_after : now + int64_t{365} * 86400;
  if (not_after <= not_before) return InvalidArgument("validity ends before it starts");
  ASSIGN_OR_RETURN(KeyPtr key, NewKey());
  ASSIGN_OR_RETURN(X509Ptr cert, NewCert(options.name, CertRoleName(options.role), not_before,
                                         not_after, key.get()));
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert.get()));
  RETURN_IF_ERROR(
      AddExtension(cert.get(), ca_cert.get(), NID_basic_constraints, "critical,CA:FALSE"));
  RETURN_IF_ERROR(AddExtension(cert.get(), ca_cert.get(), NID_key_usage,
                               "critical,digitalSignature,keyEncipherment"));
  for (const RoleRow& row : kRoles) {
    if (row.role == options.role) {
      RETURN_IF_ERROR(
          AddExtension(cert.get(), ca_cert.get(), NID_ext_key_usage, row.extended_key_usage));
    }
  }
  RETURN_IF_ERROR(AddExtension(cert.get(), ca_cert.get(), NID_subject_key_identifier, "hash"));
  RETURN_IF_ERROR(
      AddExtension(cert.get(), ca_cert.get(), NID_authority_key_identifier, "keyid:always"));
  std::string alt;
  for (const std::string& san : options.sans) {
    if (san.empty()) continue;
    if (san.find_first_of(", ") != std::string::npos) {
      return InvalidArgument("subject alternative name '" + san + "' has a comma or space");
    }
    if (!alt.empty()) alt += ",";
    alt += (IsIpAddress(san) ? "IP:" : "DNS:") + san;
  }
  if (!alt.empty())
    RETURN_IF_ERROR(AddExtension(cert.get(), ca_cert.get(), NID_subject_alt_name, alt));
  if (!X509_sign(cert.get(), ca_key.get(), EVP_sha256())) return SslFail("signing " + options.name);
  return ToPem(cert.get(), key.get());
}

StatusOr<CertInfo> InspectCertificate(const std::string& cert_pem) {
  ASSIGN_OR_RETURN(X509Ptr cert, ReadCert(cert_pem));
  CertInfo info;
  auto field = [](X509_NAME* name, int nid) {
    int idx = X509_NAME_get_index_by_NID(name, nid, -1);
    if (idx < 0) return std::string();
    ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, data);
    if (n < 0) return std::string();
    std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
    OPENSSL_free(utf8);
    return out;
  };
  info.common_name = field(X509_get_subject_name(cert.get()), NID_commonName);
  info.role = field(X509_get_subject_name(cert.get()), NID_organizationalUnitName);
  info.issuer = field(X509_get_issuer_name(cert.get()), NID_commonName);
  info.not_before = AsnTimeToEpoch(X509_get0_notBefore(cert.get()));
  info.not_after = AsnTimeToEpoch(X509_get0_notAfter(cert.get()));
  info.is_ca = X509_check_ca(cert.get()) != 0;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
    if (gn->type == GEN_DNS) {
      const ASN1_STRING* s = gn->d.dNSName;
      info.sans.push_back("DNS:" +
                          std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                      static_cast<size_t>(ASN1_STRING_length(s))));
    } else if (gn->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = gn->d.iPAddress;
      char buf[64] = {0};
      int family = ASN1_STRING_length(ip) == 4 ? AF_INET : AF_INET6;
      inet_ntop(family, ASN1_STRING_get0_data(ip), buf, sizeof(buf));
      info.sans.push_back(std::string("IP:") + buf);
    }
  }
  GENERAL_NAMES_free(names);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (X509_digest(cert.get(), EVP_sha256(), md, &md_len)) {
    char hex[4];
    for (unsigned int i = 0; i < md_len; ++i) {
      snprintf(hex, sizeof(hex), i ? ":%02X" : "%02X", md[i]);
      info.sha256_fingerprint += hex;
    }
  }
  return info;
}

Status VerifyCertificate(const std::string& cert_pem, const std::string& ca_pem, int64_t now) {
  ASSIGN_OR_RETURN(X509Ptr cert, ReadCert(cert_pem));
  ASSIGN_OR_RETURN(X509Ptr ca, ReadCert(ca_pem));
  StorePtr store(X509_STORE_new());
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !ctx || !X509_STORE_add_cert(store.get(), ca.get()) ||
      !X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr)) {
    return SslFail("verify setup");
  }
  if (now != 0) X509_STORE_CTX_set_time(ctx.get(), 0, static_cast<time_t>(now));
  if (X509_verify_cert(ctx.get()) == 1) return Status::Ok();
  ERR_clear_error();
  int err = X509_STORE_CTX_get_error(ctx.get());
  std::string reason = X509_verify_cert_error_string(err);
  switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      reason += " (not after " + FormatUtc(AsnTimeToEpoch(X509_get0_notAfter(cert.get()))) + ")";
      break;
    case X509_V_ERR_CERT_NOT_YET_VALID:
      reason += " (not before " + FormatUtc(AsnTimeToEpoch(X509_get0_notBefore(cert.get()))) +
                "; is this machine's clock right?)";
      break;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      reason = "not signed by this cluster's CA (" + reason + ")";
      break;
    default:
      break;
  }
  return PermissionDenied(reason);
}

Status CheckKeyMatchesCertificate(const std::string& cert_pem, const std::string& key_pem) {
  ASSIGN_OR_RETURN(X509Ptr cert, ReadCert(cert_pem));
  ASSIGN_OR_RETURN(KeyPtr key, ReadKey(key_pem));
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return InvalidArgument("the private key does not belong to the certificate");
  }
  return Status::Ok();
}

StatusOr<PemPair> LoadCaDir(const std::string& dir) {
  std::string crt = JoinPath(dir, "ca.crt"), key = JoinPath(dir, "ca.key");
  auto c = ReadFile(crt);
  if (!c.ok()) {
    return NotFound("no CA in " + dir + " (" + crt + ": " + c.status().message() +
                    "); create one with `coordctl certs init --dir " + dir + "`");
  }
  auto k = ReadFile(key);
  if (!k.ok()) {
    return NotFound(key + ": " + k.status().message() +
                    " (issue certificates on the machine that holds the CA key)");
  }
  return PemPair{*c, *k};
}

Status WritePemPair(const PemPair& pair, const std::string& dir, const std::string& name) {
  RETURN_IF_ERROR(WriteFileAtomic(JoinPath(dir, name + ".key"), pair.key_pem, true, 0600));
  return WriteFileAtomic(JoinPath(dir, name + ".crt"), pair.cert_pem, true, 0644);
}

StatusOr<std::string> MakePkcs12(const PemPair& pair, const std::string& ca_pem,
                                 const std::string& friendly_name, const std::string& password) {
  ASSIGN_OR_RETURN(X509Ptr cert, ReadCert(pair.cert_pem));
  ASSIGN_OR_RETURN(KeyPtr key, ReadKey(pair.key_pem));
  ASSIGN_OR_RETURN(X509Ptr ca, ReadCert(ca_pem));
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return InvalidArgument("the private key does not belong to the certificate");
  }
  struct ChainFree {  // the stack only: ca stays owned by its X509Ptr
    void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }
  };
  std::unique_ptr<STACK_OF(X509), ChainFree> chain(sk_X509_new_null());
  if (!chain || sk_X509_push(chain.get(), ca.get()) == 0) return SslFail("PKCS#12 chain");
  // OpenSSL 3's defaults: AES-256-CBC with PBKDF2 for the key and certificates, and an
  // HMAC-SHA256 MAC, which current browsers and curl read.
  std::unique_ptr<PKCS12, Deleter<PKCS12, PKCS12_free>> p12(
      PKCS12_create(password.c_str(), friendly_name.c_str(), key.get(), cert.get(), chain.get(),
                    0, 0, 0, 0, 0));
  if (!p12) return SslFail("PKCS12_create");
  BioPtr out(BIO_new(BIO_s_mem()));
  if (!out || i2d_PKCS12_bio(out.get(), p12.get()) != 1) return SslFail("PKCS#12 encoding");
  char* data = nullptr;
  long n = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace coord
