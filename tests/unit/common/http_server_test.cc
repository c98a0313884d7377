// HttpServer on real loopback sockets (port 0): routes, 404/405, static files without
// path tricks, malformed and oversized requests that must not hurt the server, and
// HTTPS that refuses clients without a certificate of the cluster CA.
#include "common/http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <thread>

#include "common/certs.h"
#include "common/fs.h"
#include "tests/support/files.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"

namespace coord {
namespace {

using testing::HttpClientTls;
using testing::HttpGet;
using testing::HttpResult;
using testing::RawHttpExchange;

std::unique_ptr<HttpServer> StartServer(HttpServerOptions options) {
  if (options.listen.empty()) options.listen = "127.0.0.1:0";
  auto server = HttpServer::Create(options);
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  if (!server.ok()) return nullptr;
  (*server)->Get("/hello", [](const HttpRequest& req) {
    return HttpResponse::Text(
        200, "hello " + req.Query("name", "nobody") + " (" + req.client_role + ")\n");
  });
  (*server)->Get(R"(/api/jobs/([^/]+)/ranks/(\d+))", [](const HttpRequest& req) {
    return HttpResponse::Json(
        200, "{\"job\":\"" + req.captures[0] + "\",\"rank\":" + req.captures[1] + "}");
  });
  (*server)->Get("/throws", [](const HttpRequest&) -> HttpResponse {
    throw std::runtime_error("handler bug");
  });
  return std::move(*server);
}

// A literal with NULs in it, whole.
template <size_t N>
std::string Bytes(const char (&text)[N]) {
  return std::string(text, N - 1);
}

std::string Addr(const HttpServer& s) { return "127.0.0.1:" + std::to_string(s.port()); }

TEST(HttpServerTest, ServesRoutesWithQueryAndCaptures) {
  auto s = StartServer({});
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->Start().ok());
  EXPECT_GT(s->port(), 0);
  EXPECT_FALSE(s->tls());
  EXPECT_EQ(s->url(), "http://127.0.0.1:" + std::to_string(s->port()));
  HttpResult r = HttpGet(Addr(*s), "/hello?name=a%20b");
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.body, "hello a b ()\n");
  EXPECT_EQ(r.content_type, "text/plain; charset=utf-8");
  r = HttpGet(Addr(*s), "/api/jobs/tiny-3/ranks/12");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"job":"tiny-3","rank":12})");
  EXPECT_EQ(r.content_type, "application/json");
}

TEST(HttpServerTest, UnknownPathsAre404AndOtherMethods405) {
  auto s = StartServer({});
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->Start().ok());
  HttpResult r = HttpGet(Addr(*s), "/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "not found: /nope\n");
  EXPECT_EQ(HttpGet(Addr(*s), "/api/jobs/x/ranks/notanumber").status, 404);
  EXPECT_EQ(HttpGet(Addr(*s), "/hello/extra").status, 404);  // whole-path match only
  auto post = RawHttpExchange("127.0.0.1", s->port(),
                              "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                              "Connection: close\r\n\r\nhi");
  EXPECT_EQ(post.reply.rfind("HTTP/1.1 405", 0), 0u) << post.reply;
  EXPECT_NE(post.reply.find("Allow: GET, HEAD"), std::string::npos) << post.reply;
  auto head = RawHttpExchange("127.0.0.1", s->port(),
                              "HEAD /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(head.reply.rfind("HTTP/1.1 200", 0), 0u) << head.reply;
  EXPECT_EQ(head.reply.find("hello nobody"), std::string::npos) << "HEAD has no body";
  // A handler that throws gets a 500, and the server goes on.
  EXPECT_EQ(HttpGet(Addr(*s), "/throws").status, 500);
  EXPECT_EQ(HttpGet(Addr(*s), "/hello").status, 200);
}

TEST(HttpServerTest, StaticFilesStayInsideTheirDirectory) {
  testing::TempDir dir;
  ASSERT_TRUE(MakeDirs(dir.File("www/js")).ok());
  ASSERT_TRUE(testing::WriteTextFile(dir.File("www/index.html"), "<p>status</p>"));
  ASSERT_TRUE(testing::WriteTextFile(dir.File("www/js/app.js"), "let x = 1;"));
  ASSERT_TRUE(testing::WriteTextFile(dir.File("secret.txt"), "do not serve"));
  auto s = StartServer({});
  ASSERT_TRUE(s);
  EXPECT_FALSE(s->ServeDirectory("static/", dir.File("www")).ok());  // not a URL path
  EXPECT_FALSE(s->ServeDirectory("/x/", dir.File("missing")).ok());
  ASSERT_TRUE(s->ServeDirectory("/static/", dir.File("www")).ok());
  ASSERT_TRUE(s->Start().ok());
  HttpResult r = HttpGet(Addr(*s), "/static/js/app.js");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "let x = 1;");
  EXPECT_NE(r.content_type.find("javascript"), std::string::npos) << r.content_type;
  EXPECT_EQ(HttpGet(Addr(*s), "/static/").body, "<p>status</p>");
  for (const char* trick : {"/static/../secret.txt", "/static/%2e%2e/secret.txt",
                            "/static/js/../../secret.txt", "/static/..%2fsecret.txt"}) {
    auto raw = RawHttpExchange(
        "127.0.0.1", s->port(),
        std::string("GET ") + trick + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(raw.reply.find("do not serve"), std::string::npos) << trick;
    EXPECT_EQ(raw.reply.rfind("HTTP/1.1 404", 0), 0u) << trick << ": " << raw.reply;
  }
}

TEST(HttpServerTest, MalformedAndHugeRequestsDoNotHurtIt) {
  HttpServerOptions o;
  o.threads = 2;
  o.read_timeout_ms = 500;
  auto s = StartServer(o);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->Start().ok());
  const int port = s->port();
  struct Case {
    const char* what;
    std::string request;
    const char* status;  // the reply's status line prefix; "" = the server just closes
  };
  const std::string close = "Connection: close\r\n";
  std::vector<Case> cases = {
      {"binary garbage", Bytes("\x00\x01\x02\xff garbage\r\n\r\n"), "HTTP/1.1 400"},
      {"no version", "GET /hello\r\n\r\n", "HTTP/1.1 400"},
      {"a 100 KB request line", "GET /" + std::string(100000, 'a') + " HTTP/1.1\r\n\r\n",
       "HTTP/1.1 414"},
      {"a 1 MB header", "GET /hello HTTP/1.1\r\nX-Big: " + std::string(1 << 20, 'b') + "\r\n\r\n",
       ""},
      {"100000 headers",
       "GET /hello HTTP/1.1\r\n" +
           [] {
             std::string h;
             for (int i = 0; i < 100000; ++i) h += "X-" + std::to_string(i) + ": v\r\n";
             return h;
           }() +
           "\r\n",
       ""},
      // Refused before a byte of the body is read.
      {"a 1 GB body announced",
       "POST /hello HTTP/1.1\r\nContent-Length: 1000000000\r\n" + close + "\r\nxx", "HTTP/1.1 405"},
      // GET bodies are not read; what follows is taken for the next request.
      {"a GET with a body", "GET /hello HTTP/1.1\r\nContent-Length: 5\r\n\r\nxxxxx",
       "HTTP/1.1 200"},
      {"a negative length", "GET /hello HTTP/1.1\r\nContent-Length: -5\r\n" + close + "\r\n", ""},
      {"bad chunking", "POST /hello HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", ""},
      {"a path with NUL and %00", Bytes("GET /hel\0lo%00 HTTP/1.1\r\n") + close + "\r\n", ""},
      {"nothing at all", "", ""},
  };
  for (const Case& c : cases) {
    auto raw = RawHttpExchange("127.0.0.1", port, c.request, 3000);
    EXPECT_TRUE(raw.connected) << c.what;
    if (*c.status != '\0') {
      EXPECT_EQ(raw.reply.rfind(c.status, 0), 0u) << c.what << ": " << raw.reply.substr(0, 200);
    }
    HttpResult after = HttpGet(Addr(*s), "/hello");
    EXPECT_EQ(after.status, 200) << "after " << c.what << ": " << after.error;
  }
}

TEST(HttpServerTest, IdleConnectionsDoNotStarveOthers) {
  HttpServerOptions o;
  o.threads = 2;
  o.read_timeout_ms = 300;
  auto s = StartServer(o);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->Start().ok());
  // Four clients that connect and say nothing hold more than the whole pool for a moment;
  // the read timeout frees it, and a real request is answered.
  std::vector<std::thread> idle;
  for (int i = 0; i < 4; ++i) {
    idle.emplace_back([port = s->port()] {
      // Half a request, then silence: held until the server gives up on it.
      RawHttpExchange("127.0.0.1", port, "GET /hello HTTP/1.1\r\n", 20000);
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // they are in first
  const auto t0 = std::chrono::steady_clock::now();
  HttpResult r = HttpGet(Addr(*s), "/hello", nullptr, 5000);
  EXPECT_EQ(r.status, 200) << r.error;
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  EXPECT_LT(ms, 4000) << "answered only after the idle clients gave up";
  std::cerr << "answered in " << ms << " ms\n";
  for (auto& t : idle) t.join();
}

HttpServerOptions At(const std::string& listen) {
  HttpServerOptions o;
  o.listen = listen;
  return o;
}

TEST(HttpServerTest, BindErrorsAndStopAreClean) {
  auto a = HttpServer::Create(At("127.0.0.1:0"));
  ASSERT_TRUE(a.ok());
  auto b = HttpServer::Create(At("127.0.0.1:" + std::to_string((*a)->port())));
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("cannot listen on 127.0.0.1:"), std::string::npos)
      << b.status().message();
  EXPECT_FALSE(HttpServer::Create(At("nonsense")).ok());
  // Never started: Stop still releases the port; twice is fine.
  const int port = (*a)->port();
  (*a)->Stop();
  (*a)->Stop();
  a->reset();
  auto again = HttpServer::Create(At("127.0.0.1:" + std::to_string(port)));
  EXPECT_TRUE(again.ok()) << again.status().ToString();
}

// --- HTTPS ------------------------------------------------------------------------------

class HttpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = CreateCa("http-test", 30);
    ASSERT_TRUE(ca.ok());
    ca_ = *ca;
    ASSERT_TRUE(WriteTextFile(dir_.File("ca.crt"), ca_.cert_pem));
    server_ = Issue(ca_, "coordd", CertRole::kCoordinator, {"127.0.0.1"});
    Write("user", Issue(ca_, "alice", CertRole::kUser, {}));
    Write("coordinator", Issue(ca_, "coordd", CertRole::kCoordinator, {"127.0.0.1"}));
    Write("node", Issue(ca_, "node1", CertRole::kNode, {"node1"}));
    auto other = CreateCa("elsewhere", 30);
    ASSERT_TRUE(other.ok());
    Write("foreign", Issue(*other, "mallory", CertRole::kUser, {}));
  }
  static PemPair Issue(const PemPair& ca, const std::string& name, CertRole role,
                       std::vector<std::string> sans) {
    IssueOptions o;
    o.name = name;
    o.role = role;
    o.sans = std::move(sans);
    auto p = IssueCertificate(ca, o);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? *p : PemPair();
  }
  static bool WriteTextFile(const std::string& path, const std::string& text) {
    return testing::WriteTextFile(path, text);
  }
  void Write(const std::string& name, const PemPair& pair) {
    ASSERT_TRUE(WritePemPair(pair, dir_.path(), name).ok());
  }
  HttpClientTls Client(const std::string& name) const {
    if (name.empty()) return {dir_.File("ca.crt"), "", ""};
    return {dir_.File("ca.crt"), dir_.File(name + ".crt"), dir_.File(name + ".key")};
  }
  std::unique_ptr<HttpServer> Serve(std::vector<CertRole> allowed) {
    HttpServerOptions o;
    o.security.tls = true;
    o.security.ca_pem = ca_.cert_pem;
    o.security.cert_pem = server_.cert_pem;
    o.security.key_pem = server_.key_pem;
    o.security.allowed_callers = std::move(allowed);
    auto s = StartServer(o);
    if (s) {
      EXPECT_TRUE(s->Start().ok());
    }
    return s;
  }

  testing::TempDir dir_;
  PemPair ca_, server_;
};

TEST_F(HttpsTest, AClientCertificateOfTheCaIsRequired) {
  auto s = Serve({CertRole::kUser, CertRole::kCoordinator});
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->tls());
  EXPECT_EQ(s->url().rfind("https://", 0), 0u);
  HttpClientTls user = Client("user");
  HttpResult ok = HttpGet(Addr(*s), "/hello", &user);
  EXPECT_EQ(ok.status, 200) << ok.error;
  EXPECT_EQ(ok.body, "hello nobody (user)\n");

  HttpClientTls none = Client("");
  HttpResult r = HttpGet(Addr(*s), "/hello", &none);
  EXPECT_EQ(r.status, -1) << "no certificate, yet: " << r.body;
  HttpClientTls foreign = Client("foreign");
  r = HttpGet(Addr(*s), "/hello", &foreign);
  EXPECT_EQ(r.status, -1) << "another CA's certificate, yet: " << r.body;
  // A node certificate is for serving (no clientAuth): TLS itself refuses it.
  HttpClientTls node = Client("node");
  r = HttpGet(Addr(*s), "/hello", &node);
  EXPECT_EQ(r.status, -1) << "a node certificate, yet: " << r.body;
  // Plain HTTP to the HTTPS port gets no page.
  HttpResult plain = HttpGet(Addr(*s), "/hello");
  EXPECT_NE(plain.status, 200);
  EXPECT_EQ(plain.body.find("hello"), std::string::npos);
  EXPECT_EQ(HttpGet(Addr(*s), "/hello", &user).status, 200) << "still serving";
}

TEST_F(HttpsTest, ACertificateOfAnotherRoleGets403) {
  auto s = Serve({CertRole::kUser});
  ASSERT_TRUE(s);
  HttpClientTls coordinator = Client("coordinator");
  HttpResult r = HttpGet(Addr(*s), "/hello", &coordinator);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.body, "a certificate with role 'coordinator' may not read this server\n");
  HttpClientTls user = Client("user");
  EXPECT_EQ(HttpGet(Addr(*s), "/hello", &user).status, 200);
}

TEST_F(HttpsTest, ABadServerCertificateIsAnErrorAtCreate) {
  HttpServerOptions o;
  o.listen = "127.0.0.1:0";
  o.security.tls = true;
  o.security.ca_pem = ca_.cert_pem;
  o.security.cert_pem = server_.cert_pem;
  o.security.key_pem = Issue(ca_, "x", CertRole::kNode, {}).key_pem;  // not its key
  auto s = HttpServer::Create(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("HTTPS on 127.0.0.1:0"), std::string::npos)
      << s.status().message();
}

}  // namespace
}  // namespace coord
