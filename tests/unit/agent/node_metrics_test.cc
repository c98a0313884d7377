// The agent's /proc parsers on captured files (a 2-CPU VM, a GPU node's disks and
// NICs), the collectors on a directory of fixtures, and the rank collector on a real
// process (this test) and on a pid that was reused.
#include "agent/node_metrics.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "agent/node_usage.h"
#include "agent/proc_scan.h"
#include "common/fs.h"
#include "tests/support/files.h"
#include "tests/support/temp_dir.h"

namespace coord::agent {
namespace {

constexpr const char* kStat =
    "cpu  2561297 5013 917936 794333 9648 0 45894 16834 0 0\n"
    "cpu0 1272600 2376 454642 411437 3621 0 22536 8385 0 0\n"
    "cpu1 1288697 2637 463294 382896 6027 7 23358 8449 0 0\n"
    "intr 123 0 0\n"
    "ctxt 456\n"
    "btime 1700000000\n";

constexpr const char* kMeminfo =
    "MemTotal:       24522436 kB\n"
    "MemFree:        11802216 kB\n"
    "MemAvailable:   22761428 kB\n"
    "Active(anon):     905172 kB\n"
    "HugePages_Total:       0\n"
    "Hugepagesize:       2048 kB\n"
    "garbage line\n";

constexpr const char* kNetDev =
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
    "drop fifo colls carrier compressed\n"
    "    lo: 3203445670930 100474546    0    0    0     0          0         0 3203445670930 "
    "100474546    0    0    0     0       0          0\n"
    "  eth0:123456 789 1 2 0 0 0 0 654321 987 3 4 0 0 0 0\n"
    "  bad: 1 2 3\n";

constexpr const char* kDiskstats =
    "   7       0 loop0 10 0 80 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    " 259       0 nvme0n1 1000 5 20000 300 2000 10 40000 500 0 1500 800 0 0 0 0 0 0\n"
    " 259       1 nvme0n1p1 900 5 18000 250 1900 10 38000 450 0 1400 700 0 0 0 0 0 0\n"
    "   8       0 sda 7 0 56 1 3 0 24 2 0 4 3\n"
    "   8       1 sda1 7 0 56 1 3 0 24 2 0 4 3\n"
    "   1       0 ram0 0 0 0 0 0 0 0 0 0 0 0\n";

TEST(ProcParsersTest, CpuTimesInSecondsPerCpu) {
  auto cpus = ParseCpuTimes(kStat, 100);
  ASSERT_EQ(cpus.size(), 2u);  // the aggregate "cpu" line is not a CPU
  EXPECT_EQ(cpus[0].cpu, "0");
  EXPECT_DOUBLE_EQ(cpus[0].user, 12726.00);
  EXPECT_DOUBLE_EQ(cpus[0].idle, 4114.37);
  EXPECT_DOUBLE_EQ(cpus[1].irq, 0.07);
  EXPECT_DOUBLE_EQ(cpus[1].steal, 84.49);
  EXPECT_TRUE(ParseCpuTimes("", 100).empty());
  EXPECT_TRUE(ParseCpuTimes(kStat, 0).empty());
}

TEST(ProcParsersTest, MeminfoAsNodeExporterNamesIt) {
  auto fields = ParseMeminfo(kMeminfo);
  ASSERT_EQ(fields.size(), 6u);
  EXPECT_EQ(fields[0].name, "MemTotal_bytes");
  EXPECT_DOUBLE_EQ(fields[0].value, 24522436.0 * 1024);
  EXPECT_EQ(fields[2].name, "MemAvailable_bytes");
  EXPECT_EQ(fields[3].name, "Active_anon_bytes");
  EXPECT_EQ(fields[4].name, "HugePages_Total");  // no unit: a count
  EXPECT_DOUBLE_EQ(fields[4].value, 0);
}

TEST(ProcParsersTest, NetDevCountersPerDevice) {
  auto devs = ParseNetDev(kNetDev);
  ASSERT_EQ(devs.size(), 2u);
  EXPECT_EQ(devs[0].device, "lo");
  EXPECT_EQ(devs[0].rx_bytes, 3203445670930u);
  EXPECT_EQ(devs[1].device, "eth0");  // no space after the colon
  EXPECT_EQ(devs[1].rx_bytes, 123456u);
  EXPECT_EQ(devs[1].rx_packets, 789u);
  EXPECT_EQ(devs[1].rx_errs, 1u);
  EXPECT_EQ(devs[1].rx_drop, 2u);
  EXPECT_EQ(devs[1].tx_bytes, 654321u);
  EXPECT_EQ(devs[1].tx_packets, 987u);
  EXPECT_EQ(devs[1].tx_errs, 3u);
  EXPECT_EQ(devs[1].tx_drop, 4u);
}

TEST(ProcParsersTest, DiskstatsWholeDisksInBytes) {
  auto disks = ParseDiskstats(kDiskstats);
  ASSERT_EQ(disks.size(), 2u);  // loop0, nvme0n1p1, sda1, ram0 are left out
  EXPECT_EQ(disks[0].device, "nvme0n1");
  EXPECT_EQ(disks[0].reads_completed, 1000u);
  EXPECT_EQ(disks[0].read_bytes, 20000u * 512);
  EXPECT_EQ(disks[0].writes_completed, 2000u);
  EXPECT_EQ(disks[0].written_bytes, 40000u * 512);
  EXPECT_DOUBLE_EQ(disks[0].io_time_seconds, 1.5);
  EXPECT_EQ(disks[1].device, "sda");  // an old kernel's 14 fields are enough
  EXPECT_TRUE(IgnoredDiskDevice("xvda1"));
  EXPECT_TRUE(IgnoredDiskDevice("zram0"));
  EXPECT_FALSE(IgnoredDiskDevice("md0"));
  EXPECT_FALSE(IgnoredDiskDevice("dm-0"));
}

TEST(NodeCollectorTest, WritesNodeExporterFamiliesFromProcFiles) {
  testing::TempDir dir;
  ASSERT_TRUE(MakeDirs(dir.File("net")).ok());
  ASSERT_TRUE(testing::WriteTextFile(dir.File("stat"), kStat));
  ASSERT_TRUE(testing::WriteTextFile(dir.File("meminfo"), kMeminfo));
  ASSERT_TRUE(testing::WriteTextFile(dir.File("net/dev"), kNetDev));
  ASSERT_TRUE(testing::WriteTextFile(dir.File("loadavg"), "0.52 0.58 0.59 1/447 12345\n"));
  // no diskstats: its metrics are left out, the rest is there
  metrics::MetricsPage page;
  CollectNodeMetrics(dir.path(), &page);
  const std::string text = page.Text();
  const double user0 = 1272600.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
  for (const std::string& line : std::vector<std::string>{
           "# TYPE node_cpu_seconds_total counter\n",
           "node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} " + metrics::FormatValue(user0) + "\n",
           std::string("node_cpu_seconds_total{cpu=\"1\",mode=\"steal\"} "),
           std::string("# TYPE node_memory_MemTotal_bytes gauge\n"),
           "node_memory_MemAvailable_bytes " + metrics::FormatValue(22761428.0 * 1024) + "\n",
           std::string("node_memory_HugePages_Total 0\n"),
           std::string("node_network_receive_bytes_total{device=\"eth0\"} 123456\n"),
           std::string("node_network_transmit_drop_total{device=\"eth0\"} 4\n"),
           std::string("node_load1 0.52\n"), std::string("node_load15 0.59\n")}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
  EXPECT_EQ(text.find("node_disk_"), std::string::npos);
}

// The heartbeat's usage sample (node_usage.h) from the same files: every CPU's busy and
// total seconds (idle and iowait are not busy), memory, and bytes off loopback.
TEST(NodeUsageTest, SumsCpusAndLeavesLoopbackOut) {
  testing::TempDir dir;
  ASSERT_TRUE(MakeDirs(dir.File("net")).ok());
  ASSERT_TRUE(testing::WriteTextFile(dir.File("stat"), kStat));
  ASSERT_TRUE(testing::WriteTextFile(dir.File("meminfo"), kMeminfo));
  ASSERT_TRUE(testing::WriteTextFile(dir.File("net/dev"), kNetDev));
  const NodeUsage u = SampleNodeUsage(dir.path(), nullptr);
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double idle = (411437.0 + 3621 + 382896 + 6027) / tick;
  const double total = (1272600.0 + 2376 + 454642 + 411437 + 3621 + 0 + 22536 + 8385 + 1288697 +
                        2637 + 463294 + 382896 + 6027 + 7 + 23358 + 8449) /
                       tick;
  EXPECT_NEAR(u.cpu_total_s(), total, 1e-6);
  EXPECT_NEAR(u.cpu_busy_s(), total - idle, 1e-6);
  EXPECT_EQ(u.mem_total_bytes(), 24522436ull * 1024);
  EXPECT_EQ(u.mem_available_bytes(), 22761428ull * 1024);
  EXPECT_EQ(u.net_rx_bytes(), 123456u);  // eth0 only; "bad" has too few fields
  EXPECT_EQ(u.net_tx_bytes(), 654321u);
  EXPECT_EQ(u.gpus_size(), 0);
  // A node without those files: zeros, not a crash.
  const NodeUsage none = SampleNodeUsage(dir.File("missing"), nullptr);
  EXPECT_EQ(none.cpu_total_s(), 0);
  EXPECT_EQ(none.mem_total_bytes(), 0u);
}

TEST(RankCollectorTest, ReportsALiveRankAndSkipsAReusedPid) {
  const int pid = getpid();
  ProcStat st;
  ASSERT_TRUE(ReadProcStat(pid, &st));
  EXPECT_GT(st.rss_pages, 0);
  // Burn a little CPU so the figure is not 0.
  volatile double x = 0;
  for (int i = 0; i < 20000000; ++i) x = x + i * 0.5;
  std::vector<RunningRank> ranks = {
      {"job-1", 2, 5, 1, {pid, st.start_ticks}},
      {"job-1", 2, 6, 2, {pid, st.start_ticks + 1}},  // a different process under our pid
      {"job-1", 2, 7, 3, {999999999, 1}},             // gone
  };
  metrics::MetricsPage page;
  CollectRankMetrics(ranks, "/proc", &page);
  const std::string text = page.Text();
  const std::string labels = "{job_id=\"job-1\",generation=\"2\",rank=\"5\",local_rank=\"1\"}";
  size_t at = text.find("coord_rank_cpu_seconds_total" + labels + " ");
  ASSERT_NE(at, std::string::npos) << text;
  EXPECT_GT(std::stod(text.substr(text.find(' ', at) + 1)), 0.0) << text;
  at = text.find("coord_rank_resident_memory_bytes" + labels + " ");
  ASSERT_NE(at, std::string::npos) << text;
  EXPECT_GT(std::stod(text.substr(text.find(' ', at) + 1)), 1e6) << text;
  EXPECT_EQ(text.find("rank=\"6\""), std::string::npos) << text;
  EXPECT_EQ(text.find("rank=\"7\""), std::string::npos) << text;
}

}  // namespace
}  // namespace coord::agent
