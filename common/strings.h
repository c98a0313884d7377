// Small string helpers every parser here needs (hostfile, playbooks, env checks).
#pragma once

#include <string>
#include <string_view>

namespace coord {

// s without leading and trailing ASCII whitespace (space, \t, \r, \n, \v, \f).
std::string Trim(std::string_view s);

}  // namespace coord
