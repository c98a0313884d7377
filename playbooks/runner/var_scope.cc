// The layered variable scope (var_scope.h): a lookup walks the layers in
// order and expands a templated value through the same scope. Pure.
#include "playbooks/runner/var_scope.h"

#include <algorithm>

namespace coord::playbooks {

void VarScope::AddLayer(const Vars* vars, bool templated) { layers_.push_back({vars, templated}); }

StatusOr<std::string> VarScope::Lookup(const std::string& name) const {
  std::vector<std::string> stack;
  return Resolve(name, &stack);
}

VarLookup VarScope::AsLookup() const {
  return [this](const std::string& name) { return Lookup(name); };
}

StatusOr<std::string> VarScope::Resolve(const std::string& name,
                                        std::vector<std::string>* stack) const {
  for (const Layer& layer : layers_) {
    auto it = layer.vars->find(name);
    if (it == layer.vars->end()) continue;
    if (!layer.templated || it->second.find("{{") == std::string::npos) return it->second;
    if (std::find(stack->begin(), stack->end(), name) != stack->end()) {
      std::string chain;
      for (const auto& s : *stack) chain += s + " -> ";
      return InvalidArgument("variable \"" + name + "\" refers to itself: " + chain + name);
    }
    StatusOr<Template> t = Template::Parse(it->second);
    if (!t.ok()) return InvalidArgument("variable \"" + name + "\": " + t.status().message());
    stack->push_back(name);
    StatusOr<std::string> value =
        t->Render([&](const std::string& inner) { return Resolve(inner, stack); });
    stack->pop_back();
    return value;
  }
  return NotFound("undefined variable \"" + name + "\"");
}

}  // namespace coord::playbooks
