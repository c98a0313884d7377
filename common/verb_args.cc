// ParseVerbArgs (see verb_args.h).
#include "common/verb_args.h"

#include <iostream>

namespace coord {

namespace po = boost::program_options;

bool ParseVerbArgs(const std::vector<std::string>& args, const VerbUsage& verb,
                   const po::options_description& options,
                   const po::positional_options_description& positional, po::variables_map* vm,
                   int* exit_code) {
  po::options_description all(options);
  all.add_options()("help,h", "show this help");
  try {
    std::vector<std::string> rest(args.begin() + 1, args.end());
    po::store(po::command_line_parser(rest).options(all).positional(positional).run(), *vm);
    if (vm->count("help")) {
      std::cout << "usage: " << verb.program << " " << verb.usage << "\n"
                << verb.summary << "\n\n" << all;
      *exit_code = 0;
      return false;
    }
    po::notify(*vm);
  } catch (const po::error& e) {
    std::cerr << verb.program << " " << verb.name << ": " << e.what() << "\nusage: "
              << verb.program << " " << verb.usage << "\n";
    *exit_code = 2;
    return false;
  }
  return true;
}

}  // namespace coord
