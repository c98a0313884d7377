// The text exposition format 0.0.4 as Prometheus reads it: HELP/TYPE once per family,
// samples grouped under it, cumulative histogram buckets, label escaping, value
// spelling; the instrumented metrics under concurrent updates; and, where Debian's
// promtool is installed, its own parser and linter reading a page we wrote.
#include "common/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "common/fs.h"
#include "tests/support/files.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace coord::metrics {
namespace {

TEST(FormatValueTest, SpellsValuesAsTheTextFormatDoes) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(-0.0), "0");
  EXPECT_EQ(FormatValue(42), "42");
  EXPECT_EQ(FormatValue(-7), "-7");
  EXPECT_EQ(FormatValue(0.5), "0.5");
  EXPECT_EQ(FormatValue(1.0 / 3), "0.3333333333333333");  // shortest that reads back
  EXPECT_EQ(FormatValue(1e20), "1e+20");
  EXPECT_EQ(FormatValue(123456789012.0), "123456789012");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
}

TEST(EscapeLabelValueTest, EscapesBackslashQuoteNewlineAndRepairsUtf8) {
  EXPECT_EQ(EscapeLabelValue(R"(a\b"c)"
                             "\n"
                             "d"),
            R"(a\\b\"c\nd)");
  EXPECT_EQ(EscapeLabelValue("GPU-é"), "GPU-é");  // valid UTF-8 stays
  EXPECT_EQ(EscapeLabelValue(std::string("x\xff"
                                         "y")),
            "x\xEF\xBF\xBDy");
  EXPECT_EQ(EscapeLabelValue(std::string("\xC0\xAF")), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
  EXPECT_EQ(EscapeLabelValue(std::string("\xE2\x82")), "\xEF\xBF\xBD\xEF\xBF\xBD");  // cut short
}

TEST(NamesTest, FollowPrometheusRules) {
  EXPECT_TRUE(ValidMetricName("coord_jobs"));
  EXPECT_TRUE(ValidMetricName("DCGM_FI_DEV_GPU_UTIL"));
  EXPECT_TRUE(ValidMetricName("a:b_1"));
  EXPECT_FALSE(ValidMetricName(""));
  EXPECT_FALSE(ValidMetricName("1abc"));
  EXPECT_FALSE(ValidMetricName("a-b"));
  EXPECT_TRUE(ValidLabelName("modelName"));
  EXPECT_FALSE(ValidLabelName("__name__"));
  EXPECT_FALSE(ValidLabelName("a:b"));
}

TEST(MetricsPageTest, WritesFamiliesWithHelpTypeAndGroupedSamples) {
  MetricsPage page;
  page.Gauge("coord_jobs", "Jobs by state.", {{"state", "RUNNING"}}, 1);
  page.Counter("coord_failures_total", "Failures.\nBy kind \\ all jobs.", {{"kind", "hang"}}, 2);
  page.Gauge("coord_jobs", "ignored: the first help wins", {{"state", "FAILED"}}, 0);
  page.Gauge("up_like", "No labels.", {}, 1.5);
  EXPECT_EQ(page.Text(),
            "# HELP coord_jobs Jobs by state.\n"
            "# TYPE coord_jobs gauge\n"
            "coord_jobs{state=\"RUNNING\"} 1\n"
            "coord_jobs{state=\"FAILED\"} 0\n"
            "# HELP coord_failures_total Failures.\\nBy kind \\\\ all jobs.\n"
            "# TYPE coord_failures_total counter\n"
            "coord_failures_total{kind=\"hang\"} 2\n"
            "# HELP up_like No labels.\n"
            "# TYPE up_like gauge\n"
            "up_like 1.5\n");
}

TEST(MetricsPageTest, EscapesLabelValuesAndKeepsLabelOrder) {
  MetricsPage page;
  page.Gauge("x", "h", {{"b", "q\"uote"}, {"a", "back\\slash"}, {"c", "new\nline"}}, 1);
  EXPECT_NE(page.Text().find("x{b=\"q\\\"uote\",a=\"back\\\\slash\",c=\"new\\nline\"} 1\n"),
            std::string::npos)
      << page.Text();
}

TEST(MetricsPageTest, HistogramBucketsAreCumulativeAndEndWithInf) {
  HistogramData h({1, 0.25, 5});  // sorted on construction
  for (double v : {0.1, 0.25, 0.3, 2.0, 7.0, 9.0}) h.Observe(v);
  h.Observe(std::nan(""));  // ignored
  MetricsPage page;
  page.Histogram("coord_failure_detection_seconds", "Detection latency.", {{"kind", "hang"}}, h);
  EXPECT_EQ(page.Text(),
            "# HELP coord_failure_detection_seconds Detection latency.\n"
            "# TYPE coord_failure_detection_seconds histogram\n"
            "coord_failure_detection_seconds_bucket{kind=\"hang\",le=\"0.25\"} 2\n"
            "coord_failure_detection_seconds_bucket{kind=\"hang\",le=\"1\"} 3\n"
            "coord_failure_detection_seconds_bucket{kind=\"hang\",le=\"5\"} 4\n"
            "coord_failure_detection_seconds_bucket{kind=\"hang\",le=\"+Inf\"} 6\n"
            "coord_failure_detection_seconds_sum{kind=\"hang\"} 18.65\n"
            "coord_failure_detection_seconds_count{kind=\"hang\"} 6\n");
}

TEST(MetricsPageTest, DropsATypeConflictAndInvalidNamesWithAComment) {
  MetricsPage page;
  page.Gauge("coord_x", "h", {}, 1);
  page.Counter("coord_x", "h", {}, 2);
  page.Gauge("bad-name", "h", {}, 3);
  const std::string text = page.Text();
  EXPECT_NE(text.find("coord_x 1\n"), std::string::npos);
  EXPECT_EQ(text.find("coord_x 2"), std::string::npos);
  EXPECT_NE(text.find("# dropped a counter sample of coord_x, a gauge\n"), std::string::npos);
  EXPECT_NE(text.find("# dropped a sample with the invalid metric name \"bad-name\"\n"),
            std::string::npos);
}

TEST(RegistryTest, InstrumentedMetricsThenCollectorsInOrder) {
  Registry registry;
  Counter& records = registry.AddCounter("coord_records_total", "Records.", {"job"});
  Counter& plain = registry.AddCounter("coord_plain_total", "Unlabelled.");
  Gauge& depth = registry.AddGauge("coord_depth", "Depth.", {"queue"});
  Histogram& lat = registry.AddHistogram("coord_lat_seconds", "Latency.", {}, {0.5, 1});
  registry.AddCollector([](MetricsPage* page) { page->Gauge("coord_late", "Late.", {}, 7); });
  records.Inc({"j1"});
  records.Inc({"j1"}, 2);
  records.Inc({"j1"}, -5);  // counters never go down: ignored
  depth.Set({"a"}, 3);
  depth.Set({"b"}, 4);
  depth.Remove({"b"});
  lat.Observe(0.7);
  EXPECT_EQ(records.Value({"j1"}), 3);
  EXPECT_EQ(registry.Render(),
            "# HELP coord_records_total Records.\n"
            "# TYPE coord_records_total counter\n"
            "coord_records_total{job=\"j1\"} 3\n"
            "# HELP coord_plain_total Unlabelled.\n"
            "# TYPE coord_plain_total counter\n"
            "coord_plain_total 0\n"
            "# HELP coord_depth Depth.\n"
            "# TYPE coord_depth gauge\n"
            "coord_depth{queue=\"a\"} 3\n"
            "# HELP coord_lat_seconds Latency.\n"
            "# TYPE coord_lat_seconds histogram\n"
            "coord_lat_seconds_bucket{le=\"0.5\"} 0\n"
            "coord_lat_seconds_bucket{le=\"1\"} 1\n"
            "coord_lat_seconds_bucket{le=\"+Inf\"} 1\n"
            "coord_lat_seconds_sum 0.7\n"
            "coord_lat_seconds_count 1\n"
            "# HELP coord_late Late.\n"
            "# TYPE coord_late gauge\n"
            "coord_late 7\n");
  (void)plain;
}

TEST(RegistryTest, ConcurrentUpdatesAreAllCounted) {
  Registry registry;
  Counter& c = registry.AddCounter("coord_events_total", "Events.", {"kind"});
  Histogram& h = registry.AddHistogram("coord_h_seconds", "H.", {}, {1});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.Inc({"a"});
        h.Observe(0.5);
        if (i % 1000 == 0) registry.Render();  // scrapes while updating
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.Value({"a"}), 40000);
  EXPECT_NE(registry.Render().find("coord_h_seconds_count 40000\n"), std::string::npos);
}

TEST(ProcessMetricsTest, ReportsThisProcess) {
  MetricsPage page;
  CollectProcessMetrics(&page);
  const std::string text = page.Text();
  for (const char* name : {"process_cpu_seconds_total ", "process_resident_memory_bytes ",
                           "process_open_fds ", "process_start_time_seconds "}) {
    EXPECT_NE(text.find(std::string("\n") + name), std::string::npos) << name << "\n" << text;
  }
}

// Prometheus's own parser and linter on a page with every kind of sample.
TEST(PromtoolTest, ReadsOurPageWithoutProblems) {
  if (!PathExists("/usr/bin/promtool"))
    GTEST_SKIP() << "promtool not installed (Debian: prometheus)";
  Registry registry;
  registry.AddCounter("coord_restarts_total", "Restarts.", {"job"}).Inc({"a \"quoted\"\njob"});
  registry.AddHistogram("coord_restart_seconds", "Restart latency.", {"kind"}, LatencyBuckets())
      .Observe({"rank_exit"}, 1.2);
  registry.AddCollector([](MetricsPage* page) {
    page->Gauge("coord_job_loss", "Loss.", {{"job", "j\\1"}}, std::nan(""));
    page->Gauge("coord_job_iteration", "Iteration.", {{"job", std::string("bad\xff")}}, 3);
    CollectProcessMetrics(page);
  });
  testing::TempDir dir;
  const std::string page_file = dir.File("metrics.txt");
  ASSERT_TRUE(testing::WriteTextFile(page_file, registry.Render()));
  testing::RunResult r =
      testing::RunCommand({"/bin/sh", "-c", "/usr/bin/promtool check metrics < " + page_file});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << "\n" << registry.Render();
}

}  // namespace
}  // namespace coord::metrics
