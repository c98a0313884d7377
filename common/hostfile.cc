// The hosts file parser (see hostfile.h for the format). Runs in coordctl and
// coordd when a job is submitted. Every line is checked and all problems are
// reported together as "PATH:LINE: <problem> in "<line>"; <hint>", so a user
// fixes the file in one go. Name resolution (ResolveHosts) is a separate step.
#include "common/hostfile.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <utility>

#include "common/fs.h"
#include "common/job_spec.h"  // DidYouMean
#include "common/strings.h"

namespace coord {
namespace {

// Above this a slots value is a typo, not a node (matches launch.nproc_per_node).
constexpr int kMaxSlots = 1024;
// The longest DNS name (RFC 1035).
constexpr size_t kMaxHostLength = 253;

constexpr char kHostChars[] =
    "host names may use letters, digits, '.', '-' and '_'; write IPv6 addresses in brackets, "
    "e.g. [fe80::1]:7071";
constexpr char kFormatHint[] = "expected `host`, `host:port` or `host slots=N`";

// key=value options after the host; one row per option. `apply` checks the
// value and stores it; false means the value is bad (the row's hint says why).
struct HostOption {
  const char* name;
  const char* hint;  // what a good value looks like
  bool (*apply)(const std::string& value, HostEntry* entry);
  bool (*given)(const HostEntry& entry);
};

bool ParseDigitsIn(const std::string& text, long lo, long hi, long* out);

const HostOption kHostOptions[] = {
    {"slots", "slots must be a positive integer (at most 1024), e.g. slots=8",
     [](const std::string& v, HostEntry* e) {
       long n = 0;
       if (!ParseDigitsIn(v, 1, kMaxSlots, &n)) return false;
       e->slots = static_cast<int>(n);
       return true;
     },
     [](const HostEntry& e) { return e.slots != 0; }},
    {"ssh_port", "ssh_port must be a port number from 1 to 65535, e.g. ssh_port=2222",
     [](const std::string& v, HostEntry* e) {
       long n = 0;
       if (!ParseDigitsIn(v, 1, 65535, &n)) return false;
       e->ssh_port = static_cast<int>(n);
       return true;
     },
     [](const HostEntry& e) { return e.ssh_port != 0; }},
    {"ssh_user",
     "ssh_user must be a login name (letters, digits, '.', '_', '-'), e.g. ssh_user=ops",
     [](const std::string& v, HostEntry* e) {
       if (v.empty() || v.size() > 64 || v[0] == '-') return false;
       for (char c : v) {
         if (!isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
           return false;
       }
       e->ssh_user = v;
       return true;
     },
     [](const HostEntry& e) { return !e.ssh_user.empty(); }},
};

// ---------------------------------------------------------------------------
// Small text helpers

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }


std::vector<std::string> SplitWhitespace(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && IsSpace(s[i])) ++i;
    size_t start = i;
    while (i < s.size() && !IsSpace(s[i])) ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

// The line as shown in messages: control bytes escaped so the message stays one line.
std::string Printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// Digits only (no sign, '+' or spaces). A value above `max` comes back as max + 1,
// so the caller reports it as out of range rather than as "not a number".
bool ParseDigits(const std::string& s, long max, long* out) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return false;
  long v = 0;
  for (char c : s) {
    v = v * 10 + (c - '0');
    if (v > max) {
      v = max + 1;
      break;
    }
  }
  *out = v;
  return true;
}

bool ParseDigitsIn(const std::string& text, long lo, long hi, long* out) {
  return ParseDigits(text, hi, out) && *out >= lo && *out <= hi;
}

// An IPv6 address, optionally with a zone ("fe80::1%eth0", which getaddrinfo accepts).
bool IsIPv6(const std::string& text) {
  size_t percent = text.find('%');
  std::string addr = text.substr(0, percent);
  struct in6_addr parsed;
  if (inet_pton(AF_INET6, addr.c_str(), &parsed) != 1) return false;
  if (percent == std::string::npos) return true;
  std::string zone = text.substr(percent + 1);
  if (zone.empty()) return false;
  for (unsigned char c : zone) {
    if (!std::isalnum(c) && c != '.' && c != '-' && c != '_') return false;
  }
  return true;
}

// The canonical form used to spot duplicates: names are case-insensitive, and an
// IPv6 address can be written several ways (::1 vs 0:0::1).
std::string CanonicalHost(const std::string& host) {
  struct in6_addr addr6;
  if (host.find(':') != std::string::npos && inet_pton(AF_INET6, host.c_str(), &addr6) == 1) {
    char buf[INET6_ADDRSTRLEN];
    if (inet_ntop(AF_INET6, &addr6, buf, sizeof(buf)) != nullptr) return buf;
  }
  std::string out = host;
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// ---------------------------------------------------------------------------
// One line

// Collects the line's problems; each becomes "PATH:LINE: problem in "line"; hint".
class LineParser {
 public:
  LineParser(const std::string& path, int line_no, const std::string& line)
      : path_(path), line_no_(line_no), line_(line) {}

  // Parses `content` (the line without its comment, trimmed). False on error.
  bool Parse(const std::string& content, HostEntry* entry);
  const std::string& error() const { return error_; }

 private:
  bool Fail(const std::string& problem, const std::string& hint) {
    error_ = path_ + ":" + std::to_string(line_no_) + ": " + problem + " in \"" + Printable(line_) +
             "\"; " + hint;
    return false;
  }
  bool ParseHostPort(const std::string& token, HostEntry* entry);
  bool ParseBracketed(const std::string& token, HostEntry* entry);
  bool CheckHostName(const std::string& host);
  bool ParsePort(const std::string& text, HostEntry* entry);
  bool ParseOption(const std::string& token, HostEntry* entry);

  const std::string& path_;
  int line_no_;
  std::string line_;
  std::string error_;
};

bool LineParser::Parse(const std::string& content, HostEntry* entry) {
  std::vector<std::string> tokens = SplitWhitespace(content);
  entry->line = line_no_;
  if (tokens[0].find('=') != std::string::npos) {
    return Fail("missing host before option '" + Printable(tokens[0]) + "'", kFormatHint);
  }
  if (!ParseHostPort(tokens[0], entry)) return false;
  for (size_t i = 1; i < tokens.size(); ++i) {
    if (!ParseOption(tokens[i], entry)) return false;
  }
  return true;
}

bool LineParser::ParseHostPort(const std::string& token, HostEntry* entry) {
  if (token[0] == '[') return ParseBracketed(token, entry);
  size_t colon = token.find(':');
  if (colon != std::string::npos && token.find(':', colon + 1) != std::string::npos) {
    return Fail("IPv6 address '" + Printable(token) + "' without brackets",
                "write it as [addr] or [addr]:port, e.g. [fe80::1]:7071");
  }
  std::string host = token.substr(0, colon);
  if (host.empty()) return Fail("missing host before ':'", kFormatHint);
  if (!CheckHostName(host)) return false;
  entry->host = host;
  if (colon == std::string::npos) return true;
  return ParsePort(token.substr(colon + 1), entry);
}

bool LineParser::ParseBracketed(const std::string& token, HostEntry* entry) {
  size_t close = token.find(']');
  if (close == std::string::npos) {
    return Fail("missing ']' after IPv6 address", "write it as [addr]:port, e.g. [fe80::1]:7071");
  }
  std::string addr = token.substr(1, close - 1);
  if (!IsIPv6(addr)) {
    return Fail("'" + Printable(addr) + "' is not an IPv6 address",
                "brackets are only for IPv6 addresses, e.g. [fe80::1]:7071");
  }
  entry->host = addr;
  std::string rest = token.substr(close + 1);
  if (rest.empty()) return true;
  if (rest[0] != ':') {
    return Fail("unexpected '" + Printable(rest) + "' after ']'",
                "write [addr] or [addr]:port, e.g. [fe80::1]:7071");
  }
  return ParsePort(rest.substr(1), entry);
}

bool LineParser::CheckHostName(const std::string& host) {
  for (unsigned char c : host) {
    if (std::isalnum(c) || c == '.' || c == '-' || c == '_') continue;
    std::string shown =
        c >= 0x80 ? "non-ASCII character" : "'" + Printable(std::string(1, c)) + "'";
    return Fail("invalid " + shown + " in host name '" + Printable(host) + "'", kHostChars);
  }
  if (host.size() > kMaxHostLength) {
    return Fail("host name longer than 253 characters", "check the line for a missing newline");
  }
  return true;
}

bool LineParser::ParsePort(const std::string& text, HostEntry* entry) {
  long port = 0;
  if (!ParseDigits(text, 65535, &port) || port < 1 || port > 65535) {
    return Fail("bad port '" + Printable(text) + "'",
                "the port must be a number from 1 to 65535 (default " +
                    std::to_string(kDefaultAgentPort) + ")");
  }
  entry->port = static_cast<int>(port);
  return true;
}

bool LineParser::ParseOption(const std::string& token, HostEntry* entry) {
  size_t eq = token.find('=');
  if (eq == std::string::npos) {
    return Fail("unexpected '" + Printable(token) + "'",
                "only one host per line, followed by options like slots=8");
  }
  std::string key = token.substr(0, eq);
  std::string value = token.substr(eq + 1);
  for (const HostOption& o : kHostOptions) {
    if (key != o.name) continue;
    if (o.given(*entry)) return Fail(key + " given twice", "keep one " + key + "=...");
    if (!o.apply(value, entry)) {
      return Fail("bad " + key + " value '" + Printable(value) + "'", o.hint);
    }
    return true;
  }
  std::vector<std::string> names;
  std::string all;
  for (const HostOption& o : kHostOptions) {
    names.push_back(o.name);
    all += std::string(all.empty() ? "" : ", ") + o.name + "=...";
  }
  std::string guess = DidYouMean(key, names);
  return Fail("unknown option '" + Printable(key) + "'",
              guess.empty() ? "the options are " + all : "did you mean " + guess + "?");
}

// "cannot read hosts file X: <strerror>", keeping ReadFile's code (NotFound, ...).
Status ReadError(const std::string& what, const std::string& path, const Status& st) {
  const std::string& m = st.message();
  size_t sep = m.rfind(": ");
  std::string reason = sep == std::string::npos ? m : m.substr(sep + 2);
  return Status(st.code(), "cannot read " + what + " " + path + ": " + reason);
}

}  // namespace

// ---------------------------------------------------------------------------
// Public API

std::string HostEntry::Target() const {
  std::string port_text = std::to_string(port);
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + port_text;
  return host + ":" + port_text;
}

StatusOr<std::vector<HostEntry>> ParseHostfile(const std::string& text, const std::string& path) {
  std::vector<HostEntry> hosts;
  std::vector<std::string> errors;  // the first kMaxErrorsListed problems
  size_t num_errors = 0;
  auto error = [&](std::string message) {
    if (num_errors++ < static_cast<size_t>(kMaxErrorsListed)) errors.push_back(std::move(message));
  };
  std::map<std::string, int> seen;  // canonical host:port -> first line
  size_t pos = 0;
  for (int line_no = 1; pos < text.size(); ++line_no) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string raw = text.substr(pos, end - pos);
    pos = end + 1;
    std::string content = Trim(raw.substr(0, raw.find('#')));
    if (content.empty()) continue;
    LineParser parser(path, line_no, Trim(raw));
    HostEntry entry;
    if (!parser.Parse(content, &entry)) {
      error(parser.error());
      continue;
    }
    std::string key = CanonicalHost(entry.host) + ":" + std::to_string(entry.port);
    auto [it, inserted] = seen.emplace(key, line_no);
    if (!inserted) {
      error(path + ":" + std::to_string(line_no) + ": duplicate host " + entry.Target() +
            " (already on line " + std::to_string(it->second) + ") in \"" + Printable(Trim(raw)) +
            "\"; list each agent once (agents sharing a machine need different ports)");
      continue;
    }
    if (hosts.size() == static_cast<size_t>(kMaxHosts)) {
      return InvalidArgument(path + ":" + std::to_string(line_no) + ": host number " +
                             std::to_string(kMaxHosts + 1) + "; one coordd supervises at most " +
                             std::to_string(kMaxHosts) +
                             " nodes: split the cluster between coordd instances");
    }
    hosts.push_back(std::move(entry));
  }
  if (!errors.empty()) {
    std::string joined;
    for (const std::string& e : errors) joined += (joined.empty() ? "" : "\n") + e;
    if (num_errors > errors.size()) {
      joined +=
          "\n" + path + ": and " + std::to_string(num_errors - errors.size()) + " more problems";
    }
    return InvalidArgument(joined);
  }
  if (hosts.empty()) {
    return InvalidArgument(path +
                           ": no hosts; expected one host per line, e.g. `node-01` or "
                           "`node-01:7071 slots=8`");
  }
  return hosts;
}

StatusOr<std::vector<HostEntry>> LoadHostfile(const std::string& path) {
  StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return ReadError("hosts file", path, text.status());
  return ParseHostfile(*text, path);
}

Status ResolveHosts(const std::vector<HostEntry>& hosts, const std::string& path) {
  std::string errors;
  bool all_transient = true;  // every failure was EAI_AGAIN: retrying may help
  for (const HostEntry& h : hosts) {
    struct addrinfo hints;
    std::memset(&hints, 0, sizeof(hints));
    // No AI_ADDRCONFIG: it hides loopback names on machines without a network.
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    struct addrinfo* result = nullptr;
    int rc = getaddrinfo(h.host.c_str(), nullptr, &hints, &result);
    if (rc == 0) {
      freeaddrinfo(result);
      continue;
    }
    std::string reason = rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc);
    all_transient = all_transient && rc == EAI_AGAIN;
    errors += (errors.empty() ? "" : "\n") + path + ":" + std::to_string(h.line) +
              ": cannot resolve host '" + h.host + "': " + reason +
              "; check the name or use an IP address";
  }
  if (errors.empty()) return Status::Ok();
  return Status(all_transient ? StatusCode::kUnavailable : StatusCode::kInvalidArgument, errors);
}

}  // namespace coord
