// Test support: small whole-file reads and writes for tests, where a missing file
// simply reads as "" (the assertion that follows says what was expected).
// Production code uses common/fs.h (atomic writes, Status errors) instead.
#pragma once

#include <string>

namespace coord::testing {

// The file's bytes; "" if it cannot be read.
std::string ReadAll(const std::string& path);
// Creates or replaces path with text; false if it could not be written.
bool WriteTextFile(const std::string& path, const std::string& text);
// Waits up to timeout_ms for the file to exist and be non-empty; its contents, or
// "" on timeout (a daemon's port file, a rank's first output).
std::string WaitForFile(const std::string& path, int timeout_ms);

}  // namespace coord::testing
