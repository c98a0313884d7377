#include "env_check/check_proto.h"

namespace coord::env_check {

namespace {

coord::agent::CheckSeverity SeverityToProto(Severity s) {
  switch (s) {
    case Severity::kInfo:
      return coord::agent::CHECK_INFO;
    case Severity::kWarn:
      return coord::agent::CHECK_WARN;
    case Severity::kFail:
      return coord::agent::CHECK_FAIL;
  }
  return coord::agent::CHECK_FAIL;
}

Severity SeverityFromProto(coord::agent::CheckSeverity s) {
  switch (s) {
    case coord::agent::CHECK_INFO:
      return Severity::kInfo;
    case coord::agent::CHECK_WARN:
      return Severity::kWarn;
    default:
      return Severity::kFail;  // a newer agent's unknown severity: be strict
  }
}

}  // namespace

coord::agent::CheckResult ToProto(const CheckResult& r) {
  coord::agent::CheckResult p;
  p.set_id(r.id);
  p.set_passed(r.passed);
  p.set_severity(SeverityToProto(r.severity));
  p.set_found(r.found);
  p.set_expected(r.expected);
  p.set_hint(r.hint);
  for (const auto& [k, v] : r.facts) (*p.mutable_facts())[k] = v;
  return p;
}

CheckResult FromProto(const coord::agent::CheckResult& p) {
  CheckResult r;
  r.id = p.id();
  r.passed = p.passed();
  r.severity = SeverityFromProto(p.severity());
  r.found = p.found();
  r.expected = p.expected();
  r.hint = p.hint();
  // protobuf maps are unordered; sort so reports are stable.
  std::map<std::string, std::string> facts(p.facts().begin(), p.facts().end());
  r.facts.assign(facts.begin(), facts.end());
  return r;
}

coord::coordinator::ClusterCheck ToProto(const ClusterReport& report) {
  coord::coordinator::ClusterCheck p;
  for (const NodeReport& n : report.nodes) {
    coord::coordinator::NodeCheck* node = p.add_nodes();
    node->set_name(n.name);
    node->set_reachable(n.reachable);
    node->set_error(n.error);
    node->set_hostname(n.hostname);
    for (const CheckResult& r : n.results) *node->add_results() = ToProto(r);
    node->set_has_clock_offset(n.clock_offset_ms.has_value());
    node->set_clock_offset_ms(n.clock_offset_ms.value_or(0));
    node->set_clock_uncertainty_ms(n.clock_uncertainty_ms);
  }
  for (const CheckResult& r : report.cluster) *p.add_cluster() = ToProto(r);
  p.set_exit_code(ClusterExitCode(report));
  return p;
}

ClusterReport FromProto(const coord::coordinator::ClusterCheck& p) {
  ClusterReport report;
  for (const auto& node : p.nodes()) {
    NodeReport n;
    n.name = node.name();
    n.reachable = node.reachable();
    n.error = node.error();
    n.hostname = node.hostname();
    for (const auto& r : node.results()) n.results.push_back(FromProto(r));
    if (node.has_clock_offset()) n.clock_offset_ms = node.clock_offset_ms();
    n.clock_uncertainty_ms = node.clock_uncertainty_ms();
    report.nodes.push_back(std::move(n));
  }
  for (const auto& r : p.cluster()) report.cluster.push_back(FromProto(r));
  return report;
}

}  // namespace coord::env_check
