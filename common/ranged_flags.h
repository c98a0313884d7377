// The daemons' numeric flags (coordd, coord-agent) with the values each accepts. Each
// is read as text and checked in one place after parsing, so a malformed or
// out-of-range value stops the daemon before it starts anything, with one message
// that names the flag, the value, the accepted range and what to do. Used from main
// only; not thread-safe.
#pragma once

#include <boost/program_options.hpp>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace coord {

class RangedFlags {
 public:
  /// \param program the daemon's name, for "see PROGRAM --help" in errors.
  explicit RangedFlags(std::string program) : program_(std::move(program)) {}

  /// Declares --name on `desc`, shown with *value as its default, accepting a whole
  /// number in [min, max]; Apply stores it into *value. `help` says what the special
  /// values (0, -1) mean.
  void AddInt(boost::program_options::options_description* desc, const char* name, int* value,
              int min, int max, const char* help);
  /// The same for a finite real number in [min, max].
  void AddReal(boost::program_options::options_description* desc, const char* name,
               double* value, double min, double max, const char* help);

  /// Parses and range-checks every flag given, in declaration order, into its value.
  /// \return InvalidArgument for the first bad one ("--x 'v': ..."); values stay as
  /// they were from that flag on.
  Status Apply() const;

  /// The error for a value of --name outside what it accepts: `expected` says what it
  /// accepts ("an integer in [0, 86400]", "0 or a number in (1, 1000]").
  Status RangeError(const std::string& name, const std::string& text,
                    const std::string& expected) const;

 private:
  struct Flag {
    std::string name;
    int* int_value = nullptr;  // exactly one of int_value, real_value is set
    double* real_value = nullptr;
    double min = 0, max = 0;
    std::string text;  // what boost stored: the default, or the value given
  };
  std::string program_;
  std::vector<std::unique_ptr<Flag>> flags_;  // boost keeps pointers to their text
};

/// "[0, 86400]" for an integer range, "[0, 1000]" for a real one (shortest form).
std::string FormatRange(double min, double max);

}  // namespace coord
