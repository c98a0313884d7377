// coordctl certs: the cluster CA that the control plane's mutual TLS trusts.
//   certs init                 a new CA in DIR (ca.crt, ca.key) and a user certificate for you
//   certs issue NAME --role R  a certificate for a node, the coordinator or a user
//   certs show FILE            what a certificate says, and whether it verifies now
//   certs export NAME          NAME.crt + NAME.key + the CA as NAME.p12, for a browser
//                              (the HTTPS /metrics and status pages) or curl
// DIR is --dir, else --tls-dir / $COORD_TLS_DIR, else ~/.coord/tls. Keys are 0600.
#include "common/certs.h"

#include <pwd.h>
#include <unistd.h>

#include <ctime>
#include <iostream>
#include <sstream>

#include "common/fs.h"
#include "coordinator/cli/cli.h"

namespace coord::cli {
namespace {

namespace po = boost::program_options;

constexpr const char* kCertsUsage =
    "certs init [--dir D] [--cluster NAME] [--days N]\n"
    "       coordctl certs issue NAME --role node|coordinator|user [--san A,B] [--days N] [--dir "
    "D] "
    "[--out D] [--force]\n"
    "       coordctl certs show FILE [--dir D]\n"
    "       coordctl certs export NAME [--dir D] [--out FILE.p12] [--password-file F]";

std::string CurrentUser() {
  if (const char* u = std::getenv("USER"); u && *u) return u;
  if (passwd* pw = getpwuid(getuid())) return pw->pw_name;
  return "user";
}

std::vector<std::string> SplitCommas(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

Status WritePair(const PemPair& pair, const std::string& dir, const std::string& name, bool force) {
  std::string crt = JoinPath(dir, name + ".crt"), key = JoinPath(dir, name + ".key");
  if (!force && (PathExists(crt) || PathExists(key))) {
    return AlreadyExists(crt + " already exists; pass --force to replace it, or pick another name");
  }
  return WritePemPair(pair, dir, name);
}

void PrintIssued(const std::string& dir, const std::string& name, const std::string& cert_pem) {
  auto info = InspectCertificate(cert_pem);
  std::cout << "issued " << JoinPath(dir, name + ".crt") << " and " << JoinPath(dir, name + ".key");
  if (info.ok()) {
    std::cout << " (role " << info->role << ", valid until " << FormatUtc(info->not_after);
    if (!info->sans.empty()) {
      std::cout << ", names";
      for (const auto& s : info->sans) std::cout << " " << s;
    }
    std::cout << ")";
  }
  std::cout << "\n";
}

int Init(const std::vector<std::string>& args) {
  std::string dir = UserTlsDir(), cluster = "coord";
  int days = 3650;
  po::options_description opts("certs init options");
  opts.add_options()("dir", po::value(&dir)->default_value(dir),
                     "directory for ca.crt, ca.key, user.crt, user.key")(
      "cluster", po::value(&cluster)->default_value(cluster),
      "the CA's name (its CN is 'NAME CA')")("days", po::value(&days)->default_value(days),
                                             "how long the CA is valid");
  po::variables_map vm;
  int code = 0;
  if (!ParseVerbArgs(args, FindVerb("certs"), opts, {}, &vm, &code)) return code;
  if (PathExists(JoinPath(dir, "ca.key")) || PathExists(JoinPath(dir, "ca.crt"))) {
    std::cerr << "coordctl certs init: " << dir
              << " already holds a CA; every certificate issued by it would stop working if it "
                 "were replaced. Use --dir for a new one.\n";
    return kExitUsage;
  }
  if (Status st = MakeDirs(dir, 0700); !st.ok()) return ReportError(st);
  auto ca = CreateCa(cluster, days);
  if (!ca.ok()) return ReportError(ca.status());
  if (Status st = WritePemPair(*ca, dir, "ca"); !st.ok()) return ReportError(st);
  IssueOptions user;
  user.name = CurrentUser();
  user.role = CertRole::kUser;
  auto pair = IssueCertificate(*ca, user);
  if (!pair.ok()) return ReportError(pair.status());
  if (Status st = WritePair(*pair, dir, "user", false); !st.ok()) return ReportError(st);
  std::cout << "created the cluster CA " << JoinPath(dir, "ca.crt") << " (key "
            << JoinPath(dir, "ca.key") << ", keep it private)\n";
  PrintIssued(dir, "user", pair->cert_pem);
  std::cout
      << "next: `coordctl certs issue NODE --role node --san ADDRESS` for each node, "
         "`coordctl certs issue coordd --role coordinator --san ADDRESS` for the coordinator\n";
  return kExitOk;
}

int Issue(const std::vector<std::string>& args) {
  std::string name, role_name, sans, dir = UserTlsDir(), out;
  int days = 365;
  bool force = false;
  po::options_description opts("certs issue options");
  opts.add_options()("name", po::value(&name),
                     "the certificate's name (CN): a node's host name, or a person")(
      "role", po::value(&role_name), "node (an agent), coordinator (coordd) or user (coordctl)")(
      "san", po::value(&sans),
      "more DNS names / IP addresses it is valid for, comma-separated "
      "(the name itself is always included for node and coordinator)")(
      "days", po::value(&days)->default_value(days), "validity in days")(
      "dir", po::value(&dir)->default_value(dir), "where the CA is")(
      "out", po::value(&out), "where to write NAME.crt and NAME.key (default: --dir)")(
      "force", po::bool_switch(&force), "replace existing files");
  po::positional_options_description pos;
  pos.add("name", 1);
  po::variables_map vm;
  int code = 0;
  if (!ParseVerbArgs(args, FindVerb("certs"), opts, pos, &vm, &code)) return code;
  if (name.empty() || role_name.empty()) {
    std::cerr << "coordctl certs issue: expected NAME and --role node|coordinator|user\n";
    return kExitUsage;
  }
  if (name.find('/') != std::string::npos || name[0] == '.') {
    std::cerr << "coordctl certs issue: NAME '" << name
              << "' must be a plain name (it becomes a file name)\n";
    return kExitUsage;
  }
  auto role = ParseCertRole(role_name);
  if (!role.ok()) {
    std::cerr << "coordctl certs issue: --role: " << role.status().message() << "\n";
    return kExitUsage;
  }
  if (days <= 0 || days > 36500) {
    std::cerr << "coordctl certs issue: --days: expected 1..36500\n";
    return kExitUsage;
  }
  auto ca = LoadCaDir(dir);
  if (!ca.ok()) return ReportError(ca.status());
  IssueOptions o;
  o.name = name;
  o.role = *role;
  if (*role != CertRole::kUser) o.sans.push_back(name);
  for (const auto& s : SplitCommas(sans)) o.sans.push_back(s);
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  o.not_after = now + int64_t{days} * 86400;
  auto pair = IssueCertificate(*ca, o);
  if (!pair.ok()) return ReportError(pair.status());
  if (out.empty()) out = dir;
  if (Status st = MakeDirs(out, 0700); !st.ok()) return ReportError(st);
  if (Status st = WritePair(*pair, out, name, force); !st.ok()) return ReportError(st);
  PrintIssued(out, name, pair->cert_pem);
  return kExitOk;
}

int Show(const std::vector<std::string>& args) {
  std::string file, dir = UserTlsDir();
  po::options_description opts("certs show options");
  opts.add_options()("file", po::value(&file), "the certificate (PEM)")(
      "dir", po::value(&dir)->default_value(dir), "the CA to verify it against (DIR/ca.crt)");
  po::positional_options_description pos;
  pos.add("file", 1);
  po::variables_map vm;
  int code = 0;
  if (!ParseVerbArgs(args, FindVerb("certs"), opts, pos, &vm, &code)) return code;
  if (file.empty()) {
    std::cerr << "coordctl certs show: expected a certificate file\n";
    return kExitUsage;
  }
  auto pem = ReadFile(file);
  if (!pem.ok()) return ReportError(pem.status().WithContext(file));
  auto info = InspectCertificate(*pem);
  if (!info.ok()) return ReportError(info.status().WithContext(file));
  std::cout << "name:        " << info->common_name << "\n"
            << "role:        " << (info->is_ca ? "CA" : info->role) << "\n"
            << "issuer:      " << info->issuer << "\n"
            << "valid:       " << FormatUtc(info->not_before) << " .. "
            << FormatUtc(info->not_after) << "\n";
  if (!info->sans.empty()) {
    std::cout << "names:      ";
    for (const auto& s : info->sans) std::cout << " " << s;
    std::cout << "\n";
  }
  std::cout << "fingerprint: SHA256 " << info->sha256_fingerprint << "\n";
  auto ca = ReadFile(JoinPath(dir, "ca.crt"));
  if (!ca.ok()) {
    std::cout << "verify:      no CA at " << JoinPath(dir, "ca.crt") << "\n";
    return kExitOk;
  }
  Status st = VerifyCertificate(*pem, *ca);
  std::cout << "verify:      "
            << (st.ok() ? "ok (signed by " + JoinPath(dir, "ca.crt") + ")" : st.message()) << "\n";
  return st.ok() ? kExitOk : kExitJobFailed;
}

// A browser (or curl) cannot read PEM files: it imports a PKCS#12 bundle. Prometheus
// reads the PEM files themselves (tls_config: ca_file, cert_file, key_file).
int Export(const std::vector<std::string>& args) {
  std::string name, dir = UserTlsDir(), out, password_file;
  po::options_description opts("certs export options");
  opts.add_options()("name", po::value(&name), "the certificate to export: DIR/NAME.crt and .key")(
      "dir", po::value(&dir)->default_value(dir), "where NAME.crt, NAME.key and ca.crt are")(
      "out", po::value(&out), "the PKCS#12 file to write (default: DIR/NAME.p12)")(
      "password-file", po::value(&password_file),
      "the bundle's password: this file's first line (default: $COORD_P12_PASSWORD, else none)");
  po::positional_options_description pos;
  pos.add("name", 1);
  po::variables_map vm;
  int code = 0;
  if (!ParseVerbArgs(args, FindVerb("certs"), opts, pos, &vm, &code)) return code;
  if (name.empty() || name.find('/') != std::string::npos) {
    std::cerr << "coordctl certs export: expected the NAME of DIR/NAME.crt (e.g. user)\n";
    return kExitUsage;
  }
  PemPair pair;
  for (auto [path, into] : {std::pair{JoinPath(dir, name + ".crt"), &pair.cert_pem},
                            std::pair{JoinPath(dir, name + ".key"), &pair.key_pem}}) {
    auto text = ReadFile(path);
    if (!text.ok()) return ReportError(text.status().WithContext(path));
    *into = *text;
  }
  auto ca = ReadFile(JoinPath(dir, "ca.crt"));
  if (!ca.ok()) return ReportError(ca.status().WithContext(JoinPath(dir, "ca.crt")));
  std::string password;
  if (!password_file.empty()) {
    auto text = ReadFile(password_file);
    if (!text.ok()) return ReportError(text.status().WithContext(password_file));
    password = text->substr(0, text->find('\n'));
  } else if (const char* env = std::getenv("COORD_P12_PASSWORD")) {
    password = env;
  }
  auto p12 = MakePkcs12(pair, *ca, name, password);
  if (!p12.ok()) return ReportError(p12.status().WithContext(name));
  if (out.empty()) out = JoinPath(dir, name + ".p12");
  if (Status st = WriteFileAtomic(out, *p12, true, 0600); !st.ok()) return ReportError(st);
  std::cout << "wrote " << out << " (" << name << ".crt, its key and the CA; "
            << (password.empty() ? "no password" : "password-protected")
            << "): import it into the browser's certificates to open the HTTPS pages\n";
  return kExitOk;
}

}  // namespace

int RunCerts(const GlobalOptions& global, const std::vector<std::string>& args) {
  std::string sub = args.size() > 1 ? args[1] : "";
  std::vector<std::string> rest;
  rest.push_back(sub);
  rest.insert(rest.end(), args.begin() + std::min<size_t>(2, args.size()), args.end());
  if (sub == "init") return Init(rest);
  if (sub == "issue") return Issue(rest);
  if (sub == "show") return Show(rest);
  if (sub == "export") return Export(rest);
  if (sub == "--help" || sub == "-h") {
    std::cout << "usage: coordctl " << kCertsUsage << "\n";
    return kExitOk;
  }
  std::cerr << "coordctl certs: expected init, issue or show (or export NAME)\nusage: coordctl " << kCertsUsage
            << "\n";
  return kExitUsage;
}

}  // namespace coord::cli
