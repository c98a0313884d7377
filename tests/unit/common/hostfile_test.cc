// Unit tests for the hosts file parser (common/hostfile.h): every accepted form,
// every rejected one with its line, line text and hint, duplicates, loading from
// disk, and name resolution (loopback and .invalid only: the test machine has no network).
#include "common/hostfile.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <ostream>
#include <string>
#include <vector>

#include "common/fs.h"
#include "tests/support/temp_dir.h"

namespace coord {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPath[] = "hosts.txt";

std::vector<HostEntry> ParseOk(const std::string& text) {
  StatusOr<std::vector<HostEntry>> hosts = ParseHostfile(text, kPath);
  EXPECT_TRUE(hosts.ok()) << hosts.status().ToString();
  return hosts.ok() ? *hosts : std::vector<HostEntry>{};
}

std::string ParseError(const std::string& text) {
  StatusOr<std::vector<HostEntry>> hosts = ParseHostfile(text, kPath);
  EXPECT_FALSE(hosts.ok()) << "parsed without error: " << text;
  if (hosts.ok()) return "";
  EXPECT_EQ(hosts.status().code(), StatusCode::kInvalidArgument);
  return hosts.status().message();
}

HostEntry Entry(const std::string& host, int port, int slots, int line) {
  HostEntry e;
  e.host = host;
  e.port = port;
  e.slots = slots;
  e.line = line;
  return e;
}

void ExpectEntries(const std::vector<HostEntry>& got, const std::vector<HostEntry>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE("entry " + std::to_string(i));
    EXPECT_EQ(got[i].host, want[i].host);
    EXPECT_EQ(got[i].port, want[i].port);
    EXPECT_EQ(got[i].slots, want[i].slots);
    EXPECT_EQ(got[i].line, want[i].line);
  }
}

// ---------------------------------------------------------------------------
// Accepted files

TEST(ParseHostfileTest, BareHostUsesDefaultPort) {
  ExpectEntries(ParseOk("node-01\n"), {Entry("node-01", kDefaultAgentPort, 0, 1)});
  EXPECT_EQ(kDefaultAgentPort, 7071);
}

TEST(ParseHostfileTest, AcceptsEveryFormInOrder) {
  const std::string text =
      "# cluster A, node-rank order\n"
      "\n"
      "node-01\n"
      "  node-02:7072   \n"
      "worker-1 slots=8\n"
      "10.0.0.4:9000 slots=2  # trailing comment\n"
      "[::1]:7075\n"
      "[fe80::1]\n"
      "[fe80::2%eth0]:7071\n"
      "\tgpu_box.example.com\t slots=4\n";
  ExpectEntries(ParseOk(text), {
                                   Entry("node-01", 7071, 0, 3),
                                   Entry("node-02", 7072, 0, 4),
                                   Entry("worker-1", 7071, 8, 5),
                                   Entry("10.0.0.4", 9000, 2, 6),
                                   Entry("::1", 7075, 0, 7),
                                   Entry("fe80::1", 7071, 0, 8),
                                   Entry("fe80::2%eth0", 7071, 0, 9),
                                   Entry("gpu_box.example.com", 7071, 4, 10),
                               });
}

TEST(ParseHostfileTest, CommentsAndBlankLinesKeepLineNumbers) {
  ExpectEntries(ParseOk("# a\n\n   \n# b\nnode-01 # first\n#node-02\n\nnode-03"),
                {Entry("node-01", 7071, 0, 5), Entry("node-03", 7071, 0, 8)});
}

TEST(ParseHostfileTest, AcceptsCrlfAndNoFinalNewline) {
  ExpectEntries(ParseOk("a:1\r\nb slots=3\r\nc"),
                {Entry("a", 1, 0, 1), Entry("b", 7071, 3, 2), Entry("c", 7071, 0, 3)});
}

TEST(ParseHostfileTest, PortAndSlotsLimits) {
  ExpectEntries(ParseOk("a:1\nb:65535 slots=1\nc slots=1024"),
                {Entry("a", 1, 0, 1), Entry("b", 65535, 1, 2), Entry("c", 7071, 1024, 3)});
}

TEST(ParseHostfileTest, SshLoginOptions) {
  auto hosts = ParseHostfile("a ssh_port=2222 ssh_user=ops slots=8\nb:7072\n", "hosts.txt");
  ASSERT_TRUE(hosts.ok()) << hosts.status().ToString();
  EXPECT_EQ((*hosts)[0].ssh_port, 2222);
  EXPECT_EQ((*hosts)[0].ssh_user, "ops");
  EXPECT_EQ((*hosts)[0].slots, 8);
  EXPECT_EQ((*hosts)[1].ssh_port, 0);
  EXPECT_EQ((*hosts)[1].ssh_user, "");
}

TEST(ParseHostfileTest, SameHostOnDifferentPortsIsNotADuplicate) {
  ExpectEntries(ParseOk("node-01:7071\nnode-01:7072\n"),
                {Entry("node-01", 7071, 0, 1), Entry("node-01", 7072, 0, 2)});
}

// A file beyond one coordd's reach is refused at its first host too many, by number and
// limit, without reading the rest: 100,000 lines used to tie coordd up for minutes.
TEST(ParseHostfileTest, MoreHostsThanOneCoorddSupervisesAreRefusedAtOnce) {
  std::string text;
  for (int i = 0; i < kMaxHosts; ++i) text += "node-" + std::to_string(i) + "\n";
  EXPECT_EQ(ParseOk(text).size(), static_cast<size_t>(kMaxHosts));
  for (int i = kMaxHosts; i < 100000; ++i) text += "node-" + std::to_string(i) + "\n";
  const std::string why = ParseError(text);
  EXPECT_THAT(why, AllOf(HasSubstr("hosts.txt:" + std::to_string(kMaxHosts + 1) + ": host number " +
                                   std::to_string(kMaxHosts + 1)),
                         HasSubstr("at most " + std::to_string(kMaxHosts) + " nodes")));
}

// Every bad line is counted, but only the first few are spelled out: the message of a
// garbage file stays readable (and small).
TEST(ParseHostfileTest, ManyBadLinesAreListedUpToALimitThenCounted) {
  std::string text;
  for (int i = 0; i < 5000; ++i) text += "bad host " + std::to_string(i) + "\n";
  const std::string why = ParseError(text);
  EXPECT_THAT(why, AllOf(HasSubstr("hosts.txt:1:"), HasSubstr("hosts.txt:20:"),
                         Not(HasSubstr("hosts.txt:21:")),
                         HasSubstr("hosts.txt: and " + std::to_string(5000 - kMaxErrorsListed) +
                                   " more problems")));
  EXPECT_LT(why.size(), 8000u);
}

TEST(HostEntryTest, TargetBracketsIPv6Only) {
  EXPECT_EQ(Entry("node-01", 7071, 0, 1).Target(), "node-01:7071");
  EXPECT_EQ(Entry("10.0.0.2", 80, 0, 1).Target(), "10.0.0.2:80");
  EXPECT_EQ(Entry("::1", 9000, 0, 1).Target(), "[::1]:9000");
  EXPECT_EQ(Entry("fe80::1%eth0", 7071, 0, 1).Target(), "[fe80::1%eth0]:7071");
}

// ---------------------------------------------------------------------------
// Rejected lines: each message names the file and line, quotes the line, and says
// what to do. One row per rule.

struct BadLine {
  const char* name;
  std::string text;    // the file's contents
  std::string where;   // "hosts.txt:N: problem"
  std::string quoted;  // in "<line>"
  std::string hint;    // after the "; "
};

// Failures print the row name, not the struct's bytes.
void PrintTo(const BadLine& c, std::ostream* os) { *os << c.name; }

class BadLineTest : public ::testing::TestWithParam<BadLine> {};

TEST_P(BadLineTest, NamesLineTextAndHint) {
  const BadLine& c = GetParam();
  std::string message = ParseError(c.text);
  EXPECT_THAT(message, AllOf(HasSubstr(c.where), HasSubstr(" in \"" + c.quoted + "\"; "),
                             HasSubstr(c.hint)));
  EXPECT_EQ(message.find('\n'), std::string::npos) << "one problem, one line: " << message;
}

constexpr char kPortHint[] = "the port must be a number from 1 to 65535 (default 7071)";
constexpr char kSlotsHint[] = "slots must be a positive integer (at most 1024), e.g. slots=8";
constexpr char kHostHint[] = "host names may use letters, digits, '.', '-' and '_'";

INSTANTIATE_TEST_SUITE_P(
    Rules, BadLineTest,
    ::testing::Values(
        BadLine{"PortZero", "ok\nnode-01:0\n", "hosts.txt:2: bad port '0'", "node-01:0", kPortHint},
        BadLine{"PortTooBig", "node-01:65536", "hosts.txt:1: bad port '65536'", "node-01:65536",
                kPortHint},
        BadLine{"PortHuge", "n:99999999999999999999", "hosts.txt:1: bad port",
                "n:99999999999999999999", kPortHint},
        BadLine{"PortNotNumber", "node-01:http", "hosts.txt:1: bad port 'http'", "node-01:http",
                kPortHint},
        BadLine{"PortNegative", "node-01:-1", "hosts.txt:1: bad port '-1'", "node-01:-1",
                kPortHint},
        BadLine{"PortEmpty", "node-01:", "hosts.txt:1: bad port ''", "node-01:", kPortHint},
        BadLine{"V6PortBad", "[::1]:0", "hosts.txt:1: bad port '0'", "[::1]:0", kPortHint},
        BadLine{"SlotsZero", "a\n\nw slots=0", "hosts.txt:3: bad slots value '0'", "w slots=0",
                kSlotsHint},
        BadLine{"SlotsNegative", "w slots=-2", "hosts.txt:1: bad slots value '-2'", "w slots=-2",
                kSlotsHint},
        BadLine{"SlotsText", "w slots=eight", "hosts.txt:1: bad slots value 'eight'",
                "w slots=eight", kSlotsHint},
        BadLine{"SlotsFloat", "w slots=2.5", "hosts.txt:1: bad slots value '2.5'", "w slots=2.5",
                kSlotsHint},
        BadLine{"SlotsTooMany", "w slots=4096", "hosts.txt:1: bad slots value '4096'",
                "w slots=4096", kSlotsHint},
        BadLine{"SlotsEmpty", "w slots=", "hosts.txt:1: bad slots value ''",
                "w slots=", kSlotsHint},
        BadLine{"SlotsTwice", "w slots=1 slots=2", "hosts.txt:1: slots given twice",
                "w slots=1 slots=2", "keep one slots=..."},
        BadLine{"SshPortZero", "w ssh_port=0", "hosts.txt:1: bad ssh_port value '0'",
                "w ssh_port=0", "ssh_port must be a port number from 1 to 65535"},
        BadLine{"SshUserOption", "w ssh_user=-oProxyCommand=x",
                "hosts.txt:1: bad ssh_user value '-oProxyCommand=x'", "w ssh_user=-oProxyCommand=x",
                "ssh_user must be a login name"},
        BadLine{"SshUserTwice", "w ssh_user=a ssh_user=b", "hosts.txt:1: ssh_user given twice",
                "w ssh_user=a ssh_user=b", "keep one ssh_user=..."},
        BadLine{"OptionTypo", "w slot=8", "hosts.txt:1: unknown option 'slot'", "w slot=8",
                "did you mean slots?"},
        BadLine{"OptionWrongCase", "w SLOTS=8", "hosts.txt:1: unknown option 'SLOTS'", "w SLOTS=8",
                "did you mean slots?"},
        BadLine{"OptionUnknown", "w foo=bar", "hosts.txt:1: unknown option 'foo'", "w foo=bar",
                "the options are slots=..., ssh_port=..., ssh_user=..."},
        BadLine{"ExtraToken", "node-01 node-02", "hosts.txt:1: unexpected 'node-02'",
                "node-01 node-02", "only one host per line"},
        BadLine{"MpiSlotsForm", "node-01 slots 8", "hosts.txt:1: unexpected 'slots'",
                "node-01 slots 8", "only one host per line"},
        BadLine{"BadHostChar", "node_01,node_02", "hosts.txt:1: invalid ',' in host name",
                "node_01,node_02", kHostHint},
        BadLine{"UrlIsNotAHost", "http://node", "hosts.txt:1: bad port '//node'", "http://node",
                kPortHint},
        BadLine{"NonAsciiHost", "n\xC3\xB6\x64\x65", "hosts.txt:1: invalid non-ASCII character",
                "n\xC3\xB6\x64\x65", kHostHint},
        BadLine{"ControlCharShownEscaped", "no\x01\x64\x65", "hosts.txt:1: invalid '\\x01'",
                "no\\x01de", kHostHint},
        BadLine{"HostTooLong", std::string(254, 'a'), "hosts.txt:1: host name longer than 253",
                std::string(254, 'a'), "missing newline"},
        BadLine{"BareIPv6", "fe80::1:7071",
                "hosts.txt:1: IPv6 address 'fe80::1:7071' without "
                "brackets",
                "fe80::1:7071", "e.g. [fe80::1]:7071"},
        BadLine{"UnclosedBracket", "[::1:7071", "hosts.txt:1: missing ']'", "[::1:7071",
                "[addr]:port"},
        BadLine{"NotIPv6InBrackets", "[node-01]:7071", "hosts.txt:1: 'node-01' is not an IPv6",
                "[node-01]:7071", "brackets are only for IPv6"},
        BadLine{"JunkAfterBracket", "[::1]7071", "hosts.txt:1: unexpected '7071' after ']'",
                "[::1]7071", "[addr]:port"},
        BadLine{"OptionWithoutHost", "slots=8", "hosts.txt:1: missing host before option",
                "slots=8", "expected `host`, `host:port` or `host slots=N`"},
        BadLine{"PortWithoutHost", "  :7071  # x", "hosts.txt:1: missing host before ':'",
                ":7071  # x", "expected `host`"}),
    [](const ::testing::TestParamInfo<BadLine>& info) { return std::string(info.param.name); });

TEST(ParseHostfileTest, EmptyFileSaysWhatToWrite) {
  const std::string want =
      "hosts.txt: no hosts; expected one host per line, e.g. `node-01` or "
      "`node-01:7071 slots=8`";
  EXPECT_EQ(ParseError(""), want);
  EXPECT_EQ(ParseError("\n\n  \t\n"), want);
  EXPECT_EQ(ParseError("# node-01\n   # node-02:7072\n"), want);
}

TEST(ParseHostfileTest, DuplicateNamesBothLines) {
  std::string message = ParseError("10.0.0.1\n10.0.0.2:7071\n10.0.0.3\n# x\n10.0.0.2\n");
  EXPECT_THAT(message, HasSubstr("hosts.txt:5: duplicate host 10.0.0.2:7071 (already on line 2)"
                                 " in \"10.0.0.2\"; list each agent once"));
}

TEST(ParseHostfileTest, DuplicateIgnoresCaseAndIPv6Spelling) {
  EXPECT_THAT(ParseError("Node-01\nnode-01:7071\n"),
              HasSubstr("hosts.txt:2: duplicate host node-01:7071 (already on line 1)"));
  EXPECT_THAT(ParseError("[::1]\n[0:0::1]:7071\n"),
              HasSubstr("hosts.txt:2: duplicate host [0:0::1]:7071 (already on line 1)"));
}

TEST(ParseHostfileTest, ReportsEveryBadLineAtOnce) {
  std::string message = ParseError("good-1\nbad:0\ngood-2\nw slots=x\ngood-1\nx y\n");
  EXPECT_THAT(message, AllOf(HasSubstr("hosts.txt:2: bad port '0'"),
                             HasSubstr("hosts.txt:4: bad slots value 'x'"),
                             HasSubstr("hosts.txt:5: duplicate host good-1:7071"),
                             HasSubstr("hosts.txt:6: unexpected 'y'")));
  EXPECT_EQ(std::count(message.begin(), message.end(), '\n'), 3) << message;
  EXPECT_THAT(message, Not(HasSubstr("hosts.txt:1:")));
  EXPECT_THAT(message, Not(HasSubstr("hosts.txt:3:")));
}

TEST(ParseHostfileTest, UsesThePathItIsGiven) {
  StatusOr<std::vector<HostEntry>> hosts = ParseHostfile("a:0", "/etc/coord/hosts");
  ASSERT_FALSE(hosts.ok());
  EXPECT_THAT(hosts.status().message(), HasSubstr("/etc/coord/hosts:1: bad port"));
}

// ---------------------------------------------------------------------------
// Loading from disk

class LoadHostfileTest : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_TRUE(tmp_.Remove().ok()); }
  testing::TempDir tmp_;
  const std::string dir_ = tmp_.path();
};

TEST_F(LoadHostfileTest, ReadsAndParses) {
  std::string path = JoinPath(dir_, "hosts");
  ASSERT_TRUE(WriteFileAtomic(path, "node-01 slots=2\nnode-02:7072\n").ok());
  StatusOr<std::vector<HostEntry>> hosts = LoadHostfile(path);
  ASSERT_TRUE(hosts.ok()) << hosts.status().ToString();
  ExpectEntries(*hosts, {Entry("node-01", 7071, 2, 1), Entry("node-02", 7072, 0, 2)});
}

TEST_F(LoadHostfileTest, ErrorsNameTheRealPath) {
  std::string path = JoinPath(dir_, "hosts");
  ASSERT_TRUE(WriteFileAtomic(path, "node-01:x\n").ok());
  StatusOr<std::vector<HostEntry>> hosts = LoadHostfile(path);
  ASSERT_FALSE(hosts.ok());
  EXPECT_THAT(hosts.status().message(), HasSubstr(path + ":1: bad port 'x'"));
}

TEST_F(LoadHostfileTest, MissingFile) {
  std::string path = JoinPath(dir_, "nope");
  StatusOr<std::vector<HostEntry>> hosts = LoadHostfile(path);
  ASSERT_FALSE(hosts.ok());
  EXPECT_EQ(hosts.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(hosts.status().message(),
            "cannot read hosts file " + path + ": No such file or directory");
}

TEST_F(LoadHostfileTest, DirectoryIsNotAFile) {
  StatusOr<std::vector<HostEntry>> hosts = LoadHostfile(dir_);
  ASSERT_FALSE(hosts.ok());
  EXPECT_EQ(hosts.status().message(), "cannot read hosts file " + dir_ + ": Is a directory");
}

// ---------------------------------------------------------------------------
// Resolution

TEST(ResolveHostsTest, LoopbackNamesAndAddressesResolve) {
  std::vector<HostEntry> hosts = ParseOk("localhost\n127.0.0.2:7072\n[::1]:7073\n");
  Status st = ResolveHosts(hosts, kPath);
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST(ResolveHostsTest, UnknownNameNamesTheLine) {
  std::vector<HostEntry> hosts = ParseOk("localhost\n# x\nno-such-host.invalid slots=2\n");
  Status st = ResolveHosts(hosts, kPath);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(),
              AllOf(HasSubstr("hosts.txt:3: cannot resolve host 'no-such-host.invalid': "),
                    HasSubstr("; check the name or use an IP address")));
  EXPECT_THAT(st.message(), Not(HasSubstr("localhost")));
}

TEST(ResolveHostsTest, ReportsEveryUnresolvableHost) {
  std::vector<HostEntry> hosts = ParseOk("a.invalid\n127.0.0.1\nb.invalid\n");
  Status st = ResolveHosts(hosts, kPath);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), AllOf(HasSubstr("hosts.txt:1: cannot resolve host 'a.invalid'"),
                                  HasSubstr("hosts.txt:3: cannot resolve host 'b.invalid'")));
}

}  // namespace
}  // namespace coord
