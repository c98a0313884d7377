// The tables behind every state machine here (coordd's job and node states, the
// agent's generation and rank lifecycles): the allowed edges and the names of the
// states, as constexpr arrays looked up by one pair of functions, in the style of
// slurm's step-state tables.
#pragma once

#include <cstddef>

namespace coord {

template <typename State>
struct StateEdge {
  State from;
  State to;
};

template <typename State>
struct NamedState {
  State state;
  const char* name;
};

// True when from -> to is in `edges`.
template <typename State, size_t N>
constexpr bool HasEdge(const StateEdge<State> (&edges)[N], State from, State to) {
  for (const StateEdge<State>& e : edges) {
    if (e.from == from && e.to == to) return true;
  }
  return false;
}

// The name `names` gives `state`, or `unknown`.
template <typename State, size_t N>
constexpr const char* NameIn(const NamedState<State> (&names)[N], State state,
                             const char* unknown) {
  for (const NamedState<State>& n : names) {
    if (n.state == state) return n.name;
  }
  return unknown;
}

}  // namespace coord
