#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz, COORD_FUZZ=ON: clang, ASan+UBSan) into
# build-fuzz/ and runs each over its seed corpus (tests/fuzz/corpus/<harness>) and then
# on new inputs for N seconds. New corpus entries and crash reproducers go to a scratch
# dir, never into the tree. Prints per harness: executions, exec/s, coverage, crashes.
# Exits non-zero on any crash, leak, timeout or out-of-memory, naming the reproducer.
# Usage: scripts/fuzz.sh [--smoke] [--seconds N] [--keep DIR] [harness...]
#   --smoke      every harness over its corpus plus 4 s each (test.sh runs this)
#   --seconds N  time per harness, its seed corpus included (default 60)
#   --keep DIR   scratch dir to use and keep (default: a temp dir, removed on success)
#   harness      names as in tests/fuzz (job_spec, safetensors, ...); default all
# Reproduce a crash: build-fuzz/bin/fuzz/<harness>_fuzz <reproducer> (see docs/fuzzing.md).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
scratch=""
harnesses=()
while (( $# > 0 )); do
  case "$1" in
    --smoke) seconds=4 ;;
    --seconds) seconds="$2"; shift ;;
    --keep) scratch="$2"; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) harnesses+=("$1") ;;
  esac
  shift
done

# The dictionary each harness mutates with (tests/fuzz/dict); none: raw bytes only.
declare -A dict=(
  [json_file]=json [job_spec]=json [job_context]=json [journal]=json [state_dir]=json
  [progress_record]=json [loose_json]=json [trainer_config]=json [set_override]=json
  [hf_config]=json [checkpoint_manifest]=json [hf_tokenizer]=json [gpt2_bpe]=json
  [safetensors]=json [sft_dataset]=json [hf_generation_config]=json [save_fence]=json
  [checkpoint_model]=json [hf_index]=json [playbook]=yaml [when_condition]=when
)

# --- build (scripts/build.sh's conventions: Ninja, ccache, install-deps) ---
mkdir -p build-fuzz
if ! COORD_BUILD_DIR=build-fuzz COORD_BUILD_TARGETS=fuzzers CC=clang CXX=clang++ \
  COORD_CMAKE_ARGS="-DCOORD_FUZZ=ON -DCOORD_WITH_CUDA=OFF ${COORD_CMAKE_ARGS:-}" \
  scripts/build.sh >build-fuzz/fuzz-build.log 2>&1; then
  tail -40 build-fuzz/fuzz-build.log >&2
  echo "fuzz.sh: building the harnesses failed (build-fuzz/fuzz-build.log)" >&2
  exit 1
fi
bin=build-fuzz/bin/fuzz
if (( ${#harnesses[@]} == 0 )); then
  for f in "$bin"/*_fuzz; do harnesses+=("$(basename "${f%_fuzz}")"); done
fi

if [[ -z "$scratch" ]]; then
  scratch=$(mktemp -d /tmp/coord-fuzz.XXXXXX)
  keep_scratch=0
else
  mkdir -p "$scratch"
  keep_scratch=1
fi
# The harnesses' scratch files (tests/fuzz/fuzz_util.h), removed even after a crash.
COORD_FUZZ_TMPDIR=$(mktemp -d /dev/shm/coord-fuzz-run.XXXXXX 2>/dev/null || mktemp -d)
export COORD_FUZZ_TMPDIR
trap 'rm -rf "$COORD_FUZZ_TMPDIR"' EXIT
# Leaks count as failures; a harness's own aborts give a stack, not a core.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:disable_coredump=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

# One libFuzzer run of harness $h for $1 seconds into $log; sets rc and repro.
run_once() {
  local -a args=(-max_total_time="$1" -timeout=1 -rss_limit_mb=2048
                 -print_final_stats=1 -artifact_prefix="$scratch/$h/artifacts/")
  [[ -n "${dict[$h]:-}" ]] && args+=(-dict="tests/fuzz/dict/${dict[$h]}.dict")
  rc=0
  # The scratch corpus comes first: libFuzzer writes new inputs to the first directory.
  "$exe" "${args[@]}" "$scratch/$h/corpus" "$seeds" >>"$log" 2>&1 || rc=$?
  repro=$(sed -n 's/.*Test unit written to //p' "$log" | tail -1)
}

printf '%-20s %12s %9s %7s %7s  %s\n' harness executions exec/s cov ft result
failed=0
for h in "${harnesses[@]}"; do
  exe="$bin/${h}_fuzz"
  seeds="tests/fuzz/corpus/$h"
  if [[ ! -x "$exe" ]]; then echo "fuzz.sh: no harness $exe" >&2; exit 2; fi
  mkdir -p "$scratch/$h/corpus" "$scratch/$h/artifacts"
  log="$scratch/$h/fuzz.log"
  : >"$log"
  start=$(date +%s)
  execs=0
  for attempt in 1 2 3 4 5; do
    left=$(( seconds - ($(date +%s) - start) ))
    (( left < 1 )) && left=1
    run_once "$left"
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    execs=$(( execs + ${n:-0} ))
    # A timeout on a loaded machine (two shared cores, ASan's quarantine) that the unit
    # alone, three times, does not repeat is not a hang in the parser: go on fuzzing.
    if (( rc != 0 )) && [[ "$repro" == */timeout-* ]] &&
       "$exe" -timeout=1 -runs=3 "$repro" >>"$log.rerun" 2>&1; then
      echo "fuzz.sh: $h: a timeout did not reproduce alone (machine load): $repro" >&2
      rm -f "$repro"
      rc=0
      (( $(date +%s) - start < seconds )) && continue
    fi
    break
  done
  elapsed=$(( $(date +%s) - start ))
  rate=$(( execs / (elapsed > 0 ? elapsed : 1) ))
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
  if (( rc == 0 )); then
    result="ok (0 crashes)"
  else
    failed=1
    what=$(grep -m1 -oE 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer): [a-z-]+|runtime error: .*|deadly signal' "$log" || true)
    result="FAILED (${what:-exit $rc}): reproducer ${repro:-none}; log $log"
  fi
  printf '%-20s %12s %9s %7s %7s  %s\n' "$h" "$execs" "$rate" "${cov:-?}" "${ft:-?}" "$result"
done

if (( failed )); then
  echo "fuzz.sh: failures above; reproduce with $bin/<harness>_fuzz <reproducer> (scratch kept: $scratch)" >&2
  exit 1
fi
(( keep_scratch )) || rm -rf "$scratch"
