// Loading playbooks and variables: YAML text -> the model of playbook.h (the
// format is documented there), a vars file -> Vars, `--var k=v` -> Vars. Every
// error is InvalidArgument and starts with where it is and what was expected:
//   "file:line:col: path: what was expected, got what; hint"
// e.g. "agent.yaml:12:7: [0].tasks[3].copy.mode: expected an octal mode such
// as "0755", got "rwx"". Unknown keys are errors, never ignored (a misspelt
// key gets a "did you mean"). Templates and `when` are parsed here too, so
// their syntax errors carry the same file:line prefix.
#pragma once

#include <string>

#include "common/status.h"
#include "playbooks/runner/playbook.h"

namespace coord::playbooks {

// `file` is used in messages and (its directory) as base_dir.
StatusOr<Playbook> ParsePlaybook(const std::string& text, const std::string& file);
// Reads `file` (a read error names it), then ParsePlaybook.
StatusOr<Playbook> LoadPlaybook(const std::string& file);

// A vars file: one YAML map of names to scalars (values may use {{ }}). An
// empty file is an empty map.
StatusOr<Vars> ParseVarsFile(const std::string& text, const std::string& file);
StatusOr<Vars> LoadVarsFile(const std::string& file);

// One `--var name=value` (the value may be empty and may contain '='); errors
// start with "--var".
Status ParseVarAssignment(const std::string& arg, Vars* vars);

}  // namespace coord::playbooks
