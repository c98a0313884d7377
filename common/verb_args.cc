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
                << verb.summary << "\n\n"
                << all;
      *exit_code = 0;
      return false;
    }
    po::notify(*vm);
  } catch (const po::error& e) {
    std::cerr << verb.program << " " << verb.name << ": " << e.what() << "\nusage: " << verb.program
              << " " << verb.usage << "\n";
    *exit_code = 2;
    return false;
  }
  return true;
}

void AddTlsOptions(boost::program_options::options_description* options, TlsSettings* settings) {
  namespace po = boost::program_options;
  options->add_options()("tls-ca",
                         po::value(&settings->paths.ca)->default_value(settings->paths.ca),
                         "the cluster CA certificate")(
      "tls-cert", po::value(&settings->paths.cert)->default_value(settings->paths.cert),
      "this end's certificate (from `coordctl certs issue`)")(
      "tls-key", po::value(&settings->paths.key),
      "its private key (default: the certificate's path with .key)")(
      "insecure", po::bool_switch(&settings->insecure),
      "plaintext gRPC without authentication, even off loopback (logged as a warning)");
}

void FinishTlsOptions(const boost::program_options::variables_map& vm, TlsSettings* settings) {
  bool cert_given = !vm["tls-cert"].defaulted();
  settings->paths_given = cert_given || !vm["tls-ca"].defaulted() || vm.count("tls-key");
  if (!vm.count("tls-key") && (cert_given || settings->paths.key.empty())) {
    settings->paths.key = KeyPathFor(settings->paths.cert);
  }
}

}  // namespace coord
