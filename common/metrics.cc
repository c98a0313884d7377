// The text exposition format and the instrumented metrics (see metrics.h).
#include "common/metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>

namespace coord::metrics {
namespace {

const char* TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// HELP text: backslash and newline escaped (quotes are fine there).
std::string EscapeHelp(const std::string& help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// Length of the valid UTF-8 sequence at s[i], or 0 when it is not one.
size_t Utf8SequenceLength(const std::string& s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  uint32_t cp = c & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (byte(i + k) & 0x3F);
  // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
  static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
  return n;
}

void AppendLabels(const Labels& labels, std::string* out) {
  if (labels.empty()) return;
  *out += '{';
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) *out += ',';
    first = false;
    *out += name;
    *out += "=\"";
    *out += EscapeLabelValue(value);
    *out += '"';
  }
  *out += '}';
}

void AppendSample(const std::string& name, const Labels& labels, double value, std::string* out) {
  *out += name;
  AppendLabels(labels, out);
  *out += ' ';
  *out += FormatValue(value);
  *out += '\n';
}

Labels Zip(const std::vector<std::string>& names, const std::vector<std::string>& values) {
  Labels out;
  for (size_t i = 0; i < names.size(); ++i) {
    out.emplace_back(names[i], i < values.size() ? values[i] : std::string());
  }
  return out;
}

// Label values padded or cut to the family's label count, so a caller's mistake
// never produces a malformed series.
std::vector<std::string> Fit(std::vector<std::string> values, size_t n) {
  values.resize(n);
  return values;
}

double Num(const std::string& text) { return std::strtod(text.c_str(), nullptr); }

}  // namespace

// --- helpers ------------------------------------------------------------------------

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::trunc(value) && std::fabs(value) < 1e15) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.0f", value);
    return std::string(buf) == "-0" ? "0" : buf;
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  if (ec != std::errc()) return "NaN";
  return std::string(buf, end);
}

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size();) {
    const char c = value[i];
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      size_t n = Utf8SequenceLength(value, i);
      if (n == 0) {
        out += "\xEF\xBF\xBD";  // U+FFFD: Prometheus refuses label values that are not UTF-8
        ++i;
        continue;
      }
      out.append(value, i, n);
      i += n;
      continue;
    }
    ++i;
  }
  return out;
}

bool ValidMetricName(const std::string& name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool ValidLabelName(const std::string& name) {
  if (name.empty() || name.rfind("__", 0) == 0) return false;  // "__" is Prometheus's own
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

std::vector<double> LatencyBuckets() {
  return {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
}

// --- HistogramData ------------------------------------------------------------------

HistogramData::HistogramData(std::vector<double> upper_bounds) : bounds(std::move(upper_bounds)) {
  std::sort(bounds.begin(), bounds.end());
  bounds.erase(std::unique(bounds.begin(), bounds.end()), bounds.end());
  bounds.erase(
      std::remove_if(bounds.begin(), bounds.end(), [](double b) { return !std::isfinite(b); }),
      bounds.end());
  counts.assign(bounds.size() + 1, 0);
}

void HistogramData::Observe(double value) {
  if (std::isnan(value)) return;
  size_t i = std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin();
  ++counts[i];
  sum += value;
  ++count;
}

// --- MetricsPage ----------------------------------------------------------------------

MetricsPage::Family* MetricsPage::FamilyFor(const std::string& name, const std::string& help,
                                            MetricType type) {
  if (!ValidMetricName(name)) {
    errors_ +=
        "# dropped a sample with the invalid metric name \"" + EscapeLabelValue(name) + "\"\n";
    return nullptr;
  }
  auto it = index_.find(name);
  if (it != index_.end()) {
    Family& f = families_[it->second];
    if (f.type == type) return &f;
    errors_ += "# dropped a " + std::string(TypeName(type)) + " sample of " + name + ", a " +
               TypeName(f.type) + "\n";
    return nullptr;
  }
  index_[name] = families_.size();
  families_.push_back({name, help, type, {}});
  return &families_.back();
}

void MetricsPage::Counter(const std::string& name, const std::string& help, const Labels& labels,
                          double value) {
  if (Family* f = FamilyFor(name, help, MetricType::kCounter)) {
    AppendSample(name, labels, value, &f->samples);
  }
}

void MetricsPage::Gauge(const std::string& name, const std::string& help, const Labels& labels,
                        double value) {
  if (Family* f = FamilyFor(name, help, MetricType::kGauge)) {
    AppendSample(name, labels, value, &f->samples);
  }
}

void MetricsPage::Histogram(const std::string& name, const std::string& help, const Labels& labels,
                            const HistogramData& data) {
  Family* f = FamilyFor(name, help, MetricType::kHistogram);
  if (f == nullptr) return;
  // Buckets are cumulative in the format: each counts everything up to its bound.
  uint64_t cumulative = 0;
  Labels with_le = labels;
  with_le.emplace_back("le", "");
  for (size_t i = 0; i < data.bounds.size(); ++i) {
    cumulative += i < data.counts.size() ? data.counts[i] : 0;
    with_le.back().second = FormatValue(data.bounds[i]);
    AppendSample(name + "_bucket", with_le, static_cast<double>(cumulative), &f->samples);
  }
  with_le.back().second = "+Inf";
  AppendSample(name + "_bucket", with_le, static_cast<double>(data.count), &f->samples);
  AppendSample(name + "_sum", labels, data.sum, &f->samples);
  AppendSample(name + "_count", labels, static_cast<double>(data.count), &f->samples);
}

std::string MetricsPage::Text() const {
  std::string out;
  for (const Family& f : families_) {
    out += "# HELP " + f.name + " " + EscapeHelp(f.help) + "\n";
    out += "# TYPE " + f.name + " " + TypeName(f.type) + "\n";
    out += f.samples;
  }
  out += errors_;
  return out;
}

// --- instrumented metrics ---------------------------------------------------------

Counter::Counter(std::string name, std::string help, std::vector<std::string> label_names)
    : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)) {}

void Counter::Inc(const std::vector<std::string>& label_values, double by) {
  if (!(by >= 0)) return;  // counters only go up
  std::lock_guard<std::mutex> lock(mu_);
  values_[Fit(label_values, label_names_.size())] += by;
}

double Counter::Value(const std::vector<std::string>& label_values) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = values_.find(Fit(label_values, label_names_.size()));
  return it == values_.end() ? 0.0 : it->second;
}

void Counter::Collect(MetricsPage* page) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (values_.empty() && label_names_.empty()) {
    page->Counter(name_, help_, {}, 0);  // an unlabelled counter exists from the start
  }
  for (const auto& [values, v] : values_) page->Counter(name_, help_, Zip(label_names_, values), v);
}

Gauge::Gauge(std::string name, std::string help, std::vector<std::string> label_names)
    : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)) {}

void Gauge::Set(const std::vector<std::string>& label_values, double value) {
  std::lock_guard<std::mutex> lock(mu_);
  values_[Fit(label_values, label_names_.size())] = value;
}

void Gauge::Remove(const std::vector<std::string>& label_values) {
  std::lock_guard<std::mutex> lock(mu_);
  values_.erase(Fit(label_values, label_names_.size()));
}

void Gauge::Collect(MetricsPage* page) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [values, v] : values_) page->Gauge(name_, help_, Zip(label_names_, values), v);
}

Histogram::Histogram(std::string name, std::string help, std::vector<std::string> label_names,
                     std::vector<double> bounds)
    : name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      bounds_(std::move(bounds)) {}

void Histogram::Observe(const std::vector<std::string>& label_values, double value) {
  std::lock_guard<std::mutex> lock(mu_);
  auto key = Fit(label_values, label_names_.size());
  auto it = values_.find(key);
  if (it == values_.end()) it = values_.emplace(key, HistogramData(bounds_)).first;
  it->second.Observe(value);
}

void Histogram::Collect(MetricsPage* page) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (values_.empty() && label_names_.empty()) {
    page->Histogram(name_, help_, {}, HistogramData(bounds_));
  }
  for (const auto& [values, h] : values_) {
    page->Histogram(name_, help_, Zip(label_names_, values), h);
  }
}

// --- Registry -------------------------------------------------------------------------

Counter& Registry::AddCounter(const std::string& name, const std::string& help,
                              std::vector<std::string> label_names) {
  std::lock_guard<std::mutex> lock(mu_);
  counters_.emplace_back(new Counter(name, help, std::move(label_names)));
  return *counters_.back();
}

Gauge& Registry::AddGauge(const std::string& name, const std::string& help,
                          std::vector<std::string> label_names) {
  std::lock_guard<std::mutex> lock(mu_);
  gauges_.emplace_back(new Gauge(name, help, std::move(label_names)));
  return *gauges_.back();
}

Histogram& Registry::AddHistogram(const std::string& name, const std::string& help,
                                  std::vector<std::string> label_names,
                                  std::vector<double> bounds) {
  std::lock_guard<std::mutex> lock(mu_);
  histograms_.emplace_back(new Histogram(name, help, std::move(label_names), std::move(bounds)));
  return *histograms_.back();
}

void Registry::AddCollector(Collector collector) {
  std::lock_guard<std::mutex> lock(mu_);
  collectors_.push_back(std::move(collector));
}

std::string Registry::Render() const {
  MetricsPage page;
  std::vector<Collector> collectors;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& c : counters_) c->Collect(&page);
    for (const auto& g : gauges_) g->Collect(&page);
    for (const auto& h : histograms_) h->Collect(&page);
    collectors = collectors_;
  }
  for (const Collector& c : collectors) c(&page);
  return page.Text();
}

// --- process metrics -------------------------------------------------------------------

void CollectProcessMetrics(MetricsPage* page) {
  // /proc/self/stat: fields after the ")" of comm; utime and stime are fields 14 and 15,
  // starttime 22, vsize 23, rss 24 (man 5 proc).
  std::ifstream in("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  if (close != std::string::npos) {
    std::istringstream fields(text.substr(close + 2));
    std::vector<std::string> f((std::istream_iterator<std::string>(fields)),
                               std::istream_iterator<std::string>());
    // f[0] is field 3 (state).
    auto field = [&](int n) { return n - 3 < static_cast<int>(f.size()) ? f[n - 3] : "0"; };
    const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double page_size = static_cast<double>(sysconf(_SC_PAGESIZE));
    const double cpu = (Num(field(14)) + Num(field(15))) / tick;
    page->Counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                  {}, cpu);
    page->Gauge("process_resident_memory_bytes", "Resident memory size in bytes.", {},
                Num(field(24)) * page_size);
    page->Gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", {},
                Num(field(23)));
    std::ifstream uptime_in("/proc/stat");
    std::string key;
    double btime = 0;
    while (uptime_in >> key) {
      if (key == "btime") {
        uptime_in >> btime;
        break;
      }
    }
    if (btime > 0) {
      page->Gauge("process_start_time_seconds",
                  "Start time of the process since unix epoch in seconds.", {},
                  btime + Num(field(22)) / tick);
    }
  }
  int fds = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') ++fds;
    }
    closedir(d);
    page->Gauge("process_open_fds", "Number of open file descriptors.", {},
                static_cast<double>(fds - 1));  // not the directory stream itself
  }
}

}  // namespace coord::metrics
