// Helpers for the trainer_data tests: a python3 with numpy for the reference
// scripts, and where the demo data and the test scripts live. Temp directories,
// files and running programs come from tests/support.
#pragma once

#include <stdlib.h>

#include <string>

#include "tests/support/process.h"

namespace trainer::data::testing {

// A python3 with numpy (Debian's python3-numpy): /usr/bin/python3 first, since a
// python3 earlier on PATH (pyenv, venv) may lack numpy. "" if none.
inline std::string PythonWithNumpy() {
  for (const char* py : {"/usr/bin/python3", "python3"}) {
    if (coord::testing::RunCommand({py, "-c", "import numpy"}).exit_code == 0) return py;
  }
  return "";
}

// Where scripts/fetch-demo-data.sh puts its files (the same default it uses).
inline std::string DemoDataDir() {
  const char* dir = getenv("COORD_DATA_DIR");
  if (dir != nullptr && *dir) return dir;
  const char* home = getenv("HOME");
  return std::string(home ? home : "") + "/.cache/coord";
}

inline std::string SourceDir() { return COORD_SOURCE_DIR; }
inline std::string TestDataScript(const std::string& name) {
  return SourceDir() + "/tests/unit/trainer_data/" + name;
}

}  // namespace trainer::data::testing
