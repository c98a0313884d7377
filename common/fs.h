// Small filesystem helpers with the durability rules Coord relies on:
// WriteFileAtomic = write temp + fsync + rename + fsync(dir), so a reader sees
// the old file or the new one, never a torn one, even across a crash.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace coord {

StatusOr<std::string> ReadFile(const std::string& path);
// durable = false skips the fsyncs: the file still survives a crash of the
// process (temp + rename), only not a power loss, and costs no disk flush.
// `mode` applies from the moment the file exists (private keys: 0600).
Status WriteFileAtomic(const std::string& path, const std::string& contents,
                       bool durable = true, int mode = 0644);
// write(2) until all of `data` is written (retrying EINTR); `path` names the
// file in the error.
Status WriteAll(int fd, const std::string& data, const std::string& path);
// mkdir -p; mode applies to the directories it creates.
Status MakeDirs(const std::string& path, int mode = 0755);
// rm -rf of a directory we own (never follows symlinks out of it).
Status RemoveTree(const std::string& path);
bool PathExists(const std::string& path);
bool IsDirectory(const std::string& path);
// Names in a directory, without "." and "..", sorted.
StatusOr<std::vector<std::string>> ListDir(const std::string& path);
std::string JoinPath(const std::string& a, const std::string& b);
std::string Dirname(const std::string& path);
// The absolute path of the running executable (/proc/self/exe).
std::string SelfExePath();

}  // namespace coord
