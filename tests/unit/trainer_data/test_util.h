// Helpers for the trainer_data tests: temp dirs, small files, running a helper
// process (python3 / node) and reading its stdout, and where the demo data lives.
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace trainer::data::testing {

// A fresh directory under $TMPDIR (or /tmp), removed by the destructor.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/trainer_data_test.XXXXXX";
    path_ = mkdtemp(tmpl.data()) ? tmpl : "";
  }
  ~TempDir() {
    if (!path_.empty()) {
      std::string cmd = "rm -rf '" + path_ + "'";
      (void)!system(cmd.c_str());
    }
  }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

inline std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs a shell command; returns its exit code (-1 if it could not run) and its stdout.
inline int RunCommand(const std::string& cmd, std::string* out) {
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[65536];
  size_t n;
  out->clear();
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out->append(buf, n);
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A python3 with numpy (Debian's python3-numpy): /usr/bin/python3 first, since a
// python3 earlier on PATH (pyenv, venv) may lack numpy. "" if none.
inline std::string PythonWithNumpy() {
  std::string out;
  for (const char* py : {"/usr/bin/python3", "python3"}) {
    std::string cmd = std::string(py) + " -c 'import numpy' 2>/dev/null";
    if (RunCommand(cmd, &out) == 0) return py;
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
