// Prometheus metrics in the text exposition format 0.0.4, for coordd's and the
// agents' /metrics pages. Two ways to publish a metric, as the client libraries have:
//   - a collector: a function that writes samples into a MetricsPage at scrape time,
//     from state the program already keeps (jobs, /proc, NVML);
//   - an instrumented metric: a Counter, Gauge or Histogram the Registry owns and
//     code updates as things happen (a warning counted, a latency observed).
// Adding a metric is one line either way:
//   page->Gauge("coord_job_iteration", "Highest iteration...", {{"job", id}}, 120);
//   static metrics::Counter& ignored = registry.AddCounter("coord_x_total", "...", {"job"});
// Names follow Prometheus's rules (base units, `_total` on counters); families keep
// the order they were first written in, every sample under its family's HELP/TYPE.
// Thread-safety: a MetricsPage belongs to one scrape (one thread); Registry and the
// instrumented metrics are thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace coord::metrics {

// label name -> value, written in this order.
using Labels = std::vector<std::pair<std::string, std::string>>;

// The media type of a /metrics reply.
inline constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

enum class MetricType { kCounter, kGauge, kHistogram };

// Bucket upper bounds (ascending, finite) plus counts; the +Inf bucket is implicit.
struct HistogramData {
  std::vector<double> bounds;
  std::vector<uint64_t> counts;  // counts[i]: observations in (bounds[i-1], bounds[i]];
                                 // counts[bounds.size()]: above the last bound
  double sum = 0.0;
  uint64_t count = 0;

  explicit HistogramData(std::vector<double> upper_bounds = {});
  void Observe(double value);
};

// Latency buckets in seconds, 50 ms to 10 min: failure detection and restarts.
std::vector<double> LatencyBuckets();

// One scrape's samples.
class MetricsPage {
 public:
  // A counter sample (name ends in _total), a gauge sample, a histogram. The help
  // text of a family is taken from its first sample. Writing one name with two types
  // is a programmer error: the sample is dropped and the page says so in a comment.
  void Counter(const std::string& name, const std::string& help, const Labels& labels,
               double value);
  void Gauge(const std::string& name, const std::string& help, const Labels& labels, double value);
  void Histogram(const std::string& name, const std::string& help, const Labels& labels,
                 const HistogramData& data);
  // The text exposition format 0.0.4.
  std::string Text() const;
  bool empty() const { return families_.empty(); }

 private:
  struct Family {
    std::string name, help;
    MetricType type;
    std::string samples;  // rendered lines
  };
  Family* FamilyFor(const std::string& name, const std::string& help, MetricType type);

  std::vector<Family> families_;
  std::map<std::string, size_t> index_;  // name -> families_ position
  std::string errors_;                   // "# ..." lines for misuse
};

// --- instrumented metrics ---------------------------------------------------------

// A family of counters with fixed label names; values are keyed by label values.
class Counter {
 public:
  void Inc(const std::vector<std::string>& label_values = {}, double by = 1.0);
  double Value(const std::vector<std::string>& label_values = {}) const;

 private:
  friend class Registry;
  Counter(std::string name, std::string help, std::vector<std::string> label_names);
  void Collect(MetricsPage* page) const;
  const std::string name_, help_;
  const std::vector<std::string> label_names_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, double> values_;  // guarded by mu_
};

class Gauge {
 public:
  void Set(const std::vector<std::string>& label_values, double value);
  void Set(double value) { Set({}, value); }
  // Drops a labelled series (a job that ended).
  void Remove(const std::vector<std::string>& label_values);

 private:
  friend class Registry;
  Gauge(std::string name, std::string help, std::vector<std::string> label_names);
  void Collect(MetricsPage* page) const;
  const std::string name_, help_;
  const std::vector<std::string> label_names_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, double> values_;  // guarded by mu_
};

class Histogram {
 public:
  void Observe(const std::vector<std::string>& label_values, double value);
  void Observe(double value) { Observe({}, value); }

 private:
  friend class Registry;
  Histogram(std::string name, std::string help, std::vector<std::string> label_names,
            std::vector<double> bounds);
  void Collect(MetricsPage* page) const;
  const std::string name_, help_;
  const std::vector<std::string> label_names_;
  const std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, HistogramData> values_;  // guarded by mu_
};

using Collector = std::function<void(MetricsPage*)>;

// What one /metrics page shows: the instrumented metrics, then every collector's
// samples, in registration order. Thread-safe; the returned references live as long
// as the Registry. Collectors run on the scraping thread, without the Registry's lock
// held, so they may take their own locks (never one held while calling Render).
class Registry {
 public:
  Counter& AddCounter(const std::string& name, const std::string& help,
                      std::vector<std::string> label_names = {});
  Gauge& AddGauge(const std::string& name, const std::string& help,
                  std::vector<std::string> label_names = {});
  Histogram& AddHistogram(const std::string& name, const std::string& help,
                          std::vector<std::string> label_names, std::vector<double> bounds);
  void AddCollector(Collector collector);
  std::string Render() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Counter>> counters_;      // guarded by mu_
  std::vector<std::unique_ptr<Gauge>> gauges_;          // guarded by mu_
  std::vector<std::unique_ptr<Histogram>> histograms_;  // guarded by mu_
  std::vector<Collector> collectors_;                   // guarded by mu_
};

// --- helpers ------------------------------------------------------------------------

// The value as the text format writes it: "+Inf", "-Inf", "NaN", integers without
// an exponent, others in the shortest form that reads back exactly.
std::string FormatValue(double value);
// A label value with \, " and newline escaped (and invalid UTF-8 replaced).
std::string EscapeLabelValue(const std::string& value);
// Whether `name` is a valid metric / label name.
bool ValidMetricName(const std::string& name);
bool ValidLabelName(const std::string& name);

// The standard process_* metrics of this process (Prometheus client libraries' process
// collector): CPU seconds, resident and virtual memory, open fds, start time.
void CollectProcessMetrics(MetricsPage* page);

}  // namespace coord::metrics
