// RangedFlags (see ranged_flags.h).
#include "common/ranged_flags.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace coord {

namespace po = boost::program_options;

namespace {

std::string Shortest(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.15g", v);
  return buf;
}

// The whole of `text` as a number, or false (empty, trailing junk, overflow, NaN/inf).
bool ParseWhole(const std::string& text, bool integer, double* out) {
  if (text.empty()) return false;
  const char* begin = text.c_str();
  char* end = nullptr;
  errno = 0;
  if (integer) {
    const long long v = std::strtoll(begin, &end, 10);
    *out = static_cast<double>(v);
  } else {
    *out = std::strtod(begin, &end);
  }
  return errno != ERANGE && end != begin && *end == '\0' && std::isfinite(*out);
}

}  // namespace

std::string FormatRange(double min, double max) {
  return "[" + Shortest(min) + ", " + Shortest(max) + "]";
}

void RangedFlags::AddInt(po::options_description* desc, const char* name, int* value, int min,
                         int max, const char* help) {
  auto flag = std::make_unique<Flag>();
  flag->name = name;
  flag->int_value = value;
  flag->min = min;
  flag->max = max;
  desc->add_options()(name, po::value(&flag->text)->default_value(std::to_string(*value)), help);
  flags_.push_back(std::move(flag));
}

void RangedFlags::AddReal(po::options_description* desc, const char* name, double* value,
                          double min, double max, const char* help) {
  auto flag = std::make_unique<Flag>();
  flag->name = name;
  flag->real_value = value;
  flag->min = min;
  flag->max = max;
  desc->add_options()(name, po::value(&flag->text)->default_value(Shortest(*value)), help);
  flags_.push_back(std::move(flag));
}

Status RangedFlags::RangeError(const std::string& name, const std::string& text,
                               const std::string& expected) const {
  return InvalidArgument("--" + name + " '" + text + "': expected " + expected +
                         "; pass a value in that range (" + program_ +
                         " --help says what it means)");
}

Status RangedFlags::Apply() const {
  for (const auto& f : flags_) {
    const bool integer = f->int_value != nullptr;
    const std::string expected =
        std::string(integer ? "an integer" : "a number") + " in " + FormatRange(f->min, f->max);
    double v = 0;
    if (!ParseWhole(f->text, integer, &v) || v < f->min || v > f->max) {
      return RangeError(f->name, f->text, expected);
    }
    if (integer) {
      *f->int_value = static_cast<int>(v);
    } else {
      *f->real_value = v;
    }
  }
  return Status::Ok();
}

}  // namespace coord
