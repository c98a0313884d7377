// Unit tests for the shared JSON parser (common/json_file.h): values come back as parsed;
// numbers beyond double range, nesting beyond kMaxJsonDepth, syntax errors and unreadable
// files are INVALID_ARGUMENT (or the read error) with file:line:column and a hint, never an
// exception; duplicate keys are reported with their JSON paths.
#include "common/json_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/fs.h"
#include "tests/support/temp_dir.h"

namespace coord {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

std::string ErrorOf(const std::string& text) {
  StatusOr<nlohmann::json> j = ParseJson(text, "job.json");
  EXPECT_FALSE(j.ok()) << text.substr(0, 80);
  if (j.ok()) return "";
  EXPECT_EQ(j.status().code(), StatusCode::kInvalidArgument);
  return j.status().message();
}

TEST(ParseJsonTest, ReturnsTheValue) {
  StatusOr<nlohmann::json> j = ParseJson(R"({"a": [1, 2.5, "x"], "b": {"c": null}})", "f.json");
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ((*j)["a"][1].get<double>(), 2.5);
  EXPECT_TRUE((*j)["b"]["c"].is_null());
  // A UTF-8 byte order mark is skipped, as editors on Windows write one.
  EXPECT_TRUE(ParseJson("\xEF\xBB\xBF{\"a\": 1}", "f.json").ok());
  // Tiny numbers round to 0 (not an error: nothing is lost that a double could hold).
  j = ParseJson(R"({"x": 1e-400})", "f.json");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ((*j)["x"].get<double>(), 0.0);
}

TEST(ParseJsonTest, ANumberBeyondDoubleRangeIsAnErrorAtItsPosition) {
  EXPECT_EQ(ErrorOf("{\"x\": 1e400}"),
            "job.json:1:7: invalid JSON: the number 1e400 is out of range (a JSON number here "
            "must fit a double, at most about 1.8e308); write a smaller number, or a string "
            "if it is not meant as a number");
  // The same characters inside a string earlier on are not the number.
  EXPECT_THAT(ErrorOf("{\"s\": \"1e400\",\n \"x\": [-1e400]}"),
              HasSubstr("job.json:2:8: invalid JSON: the number -1e400 is out of range"));
  // An integer too long for 64 bits becomes a double; one beyond 1.8e308 is refused too.
  EXPECT_THAT(ErrorOf("[" + std::string(400, '9') + "]"),
              HasSubstr("job.json:1:2: invalid JSON: the number 999"));
}

TEST(ParseJsonTest, NestingBeyondTheLimitIsAnErrorNotACrash) {
  // At the limit: fine.
  std::string ok = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  EXPECT_TRUE(ParseJson(ok, "f.json").ok());
  // One deeper: refused at the '[' that goes too deep.
  std::string deep = std::string(kMaxJsonDepth + 1, '[') + std::string(kMaxJsonDepth + 1, ']');
  EXPECT_EQ(ErrorOf(deep), "job.json:1:" + std::to_string(kMaxJsonDepth + 1) +
                               ": invalid JSON: arrays/objects nested deeper than " +
                               std::to_string(kMaxJsonDepth) +
                               " levels; a configuration needs a few, so look for a run of "
                               "unclosed '[' or '{' here");
  // What a new user found: 100000 '[' (unclosed) and objects nested as deep.
  EXPECT_THAT(ErrorOf(std::string(100000, '[')), HasSubstr("nested deeper than"));
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += "{\"a\":";
  EXPECT_THAT(ErrorOf(objects), HasSubstr("job.json:1:"));
  // Brackets inside strings do not count.
  std::string in_string = "{\"a\": \"" + std::string(1000, '[') + "\\\"{{\"}";
  EXPECT_TRUE(ParseJson(in_string, "f.json").ok());
  // A syntax error before the deep part is reported as the syntax error it is.
  EXPECT_THAT(ErrorOf("{\"a\": tru, \"b\": " + std::string(1000, '[')),
              HasSubstr("job.json:1:10: invalid JSON: invalid literal"));
}

TEST(ParseJsonTest, SyntaxErrorsNameLineColumnAndHint) {
  EXPECT_EQ(ErrorOf("{\n  \"a\": 1,\n}"),
            "job.json:2:9: invalid JSON: trailing comma before '}'; remove it");
  EXPECT_THAT(ErrorOf("{\"a\": 1 // note\n}"),
              AllOf(HasSubstr("job.json:1:9: invalid JSON: "), HasSubstr("JSON has no comments")));
  EXPECT_EQ(ErrorOf(""), "job.json: empty; expected a JSON value such as {\"key\": 1}");
  EXPECT_EQ(ErrorOf(" \n"), "job.json: empty; expected a JSON value such as {\"key\": 1}");
  EXPECT_THAT(ErrorOf("{\"a\": \"\xFF\"}"), HasSubstr("job.json:1:"));  // invalid UTF-8
}

TEST(ParseJsonTest, DuplicateKeysAreReportedWithTheirPaths) {
  std::vector<std::string> dups;
  StatusOr<nlohmann::json> j = ParseJson(
      R"({"a": 1, "b": [{"c": 1, "c": 2}], "a": 3, "d": {"e f": 1, "e f": 2}})", "f.json", &dups);
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_THAT(dups, ::testing::ElementsAre("b[0].c", "a", "d[\"e f\"]"));
  EXPECT_TRUE(ParseJson(R"({"a": 1, "a": 2})", "f.json").ok());  // not asked: not an error
}

TEST(LoadJsonFileTest, ReadsAndNamesTheFile) {
  testing::TempDir tmp;
  const std::string dir = tmp.path();
  ASSERT_TRUE(WriteFileAtomic(dir + "/bad.json", "{\"x\":\n 1e400}", /*durable=*/false).ok());
  StatusOr<nlohmann::json> j = LoadJsonFile(dir + "/bad.json");
  ASSERT_FALSE(j.ok());
  EXPECT_THAT(j.status().message(), HasSubstr(dir + "/bad.json:2:2: invalid JSON: the number"));
  j = LoadJsonFile(dir + "/missing.json");
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(j.status().message(), HasSubstr("missing.json"));
}

// ---------------------------------------------------------------------------
// JsonGet / JsonValue: numbers from files programs wrote, range-checked

// The message of the json::exception `get` throws, or "" (with a failure) if none.
template <typename F>
std::string ThrownBy(F get) {
  try {
    get();
  } catch (const nlohmann::json::exception& e) {
    return e.what();
  }
  ADD_FAILURE() << "no exception";
  return "";
}

TEST(JsonGetTest, NumbersThatFitComeBackAsGetWouldReturnThem) {
  using nlohmann::json;
  EXPECT_EQ(JsonGet<int>(json(-7)), -7);
  EXPECT_EQ(JsonGet<int>(json(2147483647)), 2147483647);
  EXPECT_EQ(JsonGet<int64_t>(json(-9223372036854775807LL - 1)), INT64_MIN);
  EXPECT_EQ(JsonGet<uint64_t>(json(18446744073709551615ULL)), UINT64_MAX);
  EXPECT_EQ(JsonGet<int>(json(2.9)), 2);  // truncated, as get<int>() does
  EXPECT_EQ(JsonGet<double>(json(1e300)), 1e300);
  EXPECT_EQ(JsonGet<std::string>(json("x")), "x");
  EXPECT_TRUE(JsonGet<bool>(json(true)));
  EXPECT_EQ(JsonValue<int>(json::object(), "n", 5), 5);
  EXPECT_EQ(JsonValue<int>(json{{"n", 6}}, "n", 5), 6);
}

// get<int>() of 1e300 or 2^63 is undefined behaviour (UBSan stops the fuzzers on it) and
// get<uint64_t>() of -1 is 2^64-1: each is an error saying what did not fit.
TEST(JsonGetTest, NumbersThatDoNotFitThrowOutOfRange) {
  using nlohmann::json;
  EXPECT_THAT(ThrownBy([] { JsonGet<int>(json(1e300)); }),
              HasSubstr("the number 1e+300 does not fit int32"));
  EXPECT_THAT(ThrownBy([] { JsonGet<int>(json(2147483648LL)); }),
              HasSubstr("the number 2147483648 does not fit int32"));
  EXPECT_THAT(ThrownBy([] { JsonGet<int64_t>(json(9223372036854775808ULL)); }),
              HasSubstr("the number 9223372036854775808 does not fit int64"));
  EXPECT_THAT(ThrownBy([] { JsonGet<int64_t>(json(9.3e18)); }), HasSubstr("does not fit int64"));
  EXPECT_THAT(ThrownBy([] { JsonGet<uint64_t>(json(-1)); }),
              HasSubstr("the number -1 does not fit uint64"));
  EXPECT_THAT(ThrownBy([] { JsonGet<uint64_t>(json(-1.5)); }), HasSubstr("does not fit uint64"));
  EXPECT_THAT(ThrownBy([] { JsonGet<float>(json(1e300)); }), HasSubstr("does not fit float"));
  const json huge = {{"n", -1e300}};
  EXPECT_THAT(ThrownBy([&] { JsonValue<int>(huge, "n", 0); }), HasSubstr("does not fit int32"));
  // Not a number: get()'s own type_error.
  EXPECT_THAT(ThrownBy([] { JsonGet<int>(json("7")); }), HasSubstr("type must be number"));
}

}  // namespace
}  // namespace coord
