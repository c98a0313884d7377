// Test support: file helpers (see files.h).
#include "tests/support/files.h"

#include <fstream>
#include <sstream>

#include "tests/support/wait.h"

namespace coord::testing {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool WriteTextFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  return static_cast<bool>(out);
}

std::string WaitForFile(const std::string& path, int timeout_ms) {
  std::string text;
  WaitUntil(
      [&] {
        text = ReadAll(path);
        return !text.empty();
      },
      timeout_ms);
  return text;
}

}  // namespace coord::testing
