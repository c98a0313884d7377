// Free space on a filesystem, for the daemons' reserves: coord-agent refuses launches
// below --min-free-mb in its state dir, coordd refuses new jobs when its journal's
// filesystem cannot hold their records. Any process; no state.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace coord {

/// Bytes an unprivileged writer can still use on the filesystem holding `path`
/// (statvfs's f_bavail: root's reserved blocks do not count).
/// \return the bytes, or "statvfs PATH: <errno text>" (e.g. PATH missing).
StatusOr<uint64_t> FreeBytes(const std::string& path);

}  // namespace coord
