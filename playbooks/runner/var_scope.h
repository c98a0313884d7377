// The variables one host sees while it runs one play (runner.cc builds one per
// host and play): layers, highest precedence first. The runner stacks --var,
// the vars file, the play's vars:, the inventory host's vars, then the host's
// facts. Values of templated layers are expanded when looked up, against the
// whole scope (so a play var may use a fact), recursively, with loops reported.
// Facts are added untemplated: a fact's text is never expanded.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "playbooks/runner/template.h"

namespace coord::playbooks {

// Holds pointers: the maps must outlive the scope. One host's thread builds
// and uses it; a lookup changes neither the scope nor the maps.
class VarScope {
 public:
  // The first layer added wins over those added after it.
  void AddLayer(const Vars* vars, bool templated);
  // NotFound "undefined variable \"x\"" (the innermost missing name);
  // InvalidArgument for a value that is not a valid template or refers to
  // itself ("variable \"a\" refers to itself: a -> b -> a").
  StatusOr<std::string> Lookup(const std::string& name) const;
  // Lookup as a VarLookup for Template::Render and Condition::Evaluate; it
  // refers to this scope, which must outlive it.
  VarLookup AsLookup() const;

 private:
  // `stack` holds the names being expanded, to report a loop as a chain.
  StatusOr<std::string> Resolve(const std::string& name, std::vector<std::string>* stack) const;
  struct Layer {
    const Vars* vars;
    bool templated;
  };
  std::vector<Layer> layers_;
};

}  // namespace coord::playbooks
