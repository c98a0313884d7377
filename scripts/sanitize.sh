#!/usr/bin/env bash
# The test suite under sanitizers (docs/testing.md, "Sanitizers"):
#   scripts/sanitize.sh asan [ctest args]         ASan + UBSan (build-asan/), every CPU test (-LE gpu)
#   scripts/sanitize.sh asan --unit [ctest args]  the same build, unit tests only (-L unit)
#   scripts/sanitize.sh asan --control-plane      builds and runs only the unit tests of
#                                                 common/, agent/, coordinator/ (CI's step)
#   scripts/sanitize.sh tsan [ctest args]         TSan (build-tsan/), the control-plane tests: the
#                                                 unit tests of common/, agent/, coordinator/ and
#                                                 the integration tests of coordd and the agents
# COORD_BUILD_TARGETS (space-separated) builds only those targets first (default: asan all,
# tsan the list below). Every process a test starts (coordd, coord-agent, coord-supervisor, ranks) is a sanitized
# binary and inherits the options below: ASan and TSan reports go to files under
# <build>/sanitizer-logs/, and the run fails, printing them, if any is there at the end (a
# daemon's report would otherwise only reach its log in a deleted temp dir); a UBSan
# report aborts the process that hit it. TSan's reports are sorted by scripts/tsan_triage.py
# first: those that are Debian's uninstrumented gRPC handing its own objects between its
# threads are counted, every other one is a finding and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-}"
[[ $# -gt 0 ]] && shift
unit=0 control_plane=0
if [[ "${1:-}" == --unit ]]; then unit=1; shift; fi
if [[ "${1:-}" == --control-plane ]]; then control_plane=1; shift; fi

# What `tsan` builds and runs: the control plane. The jobs of the chaos, diagnosis and
# metrics tests run a plain gpt-rank from build-nocuda/ (COORD_TEST_GPT_RANK): the trainer's
# OpenMP threads synchronise inside libgomp, which TSan cannot see.
tsan_unit_dirs="tests/unit/common tests/unit/agent tests/unit/coordinator"
tsan_integration="agent_test cluster_test chaos_test coordd_limits_test local_mode_test
                  diagnosis_test metrics_http_test tls_test"
tsan_targets="coordd coord-agent coordctl coord-supervisor rank_probe
  hostfile_test job_spec_test json_file_test flight_record_test certs_test metrics_test
  http_server_test rank_env_test state_dir_test cgroup_test proc_scan_test log_tailer_test
  port_reservations_test lifecycle_test node_metrics_test gpu_metrics_test progress_reader_test
  agent_service_test job_state_test node_state_test job_plan_test journal_test job_manager_test
  coordinator_server_test progress_deadline_test job_progress_test grpc_service_test
  job_metrics_test straggler_test hang_report_test job_diagnosis_test status_api_test
  progress_view_test $tsan_integration"

case "$mode" in
  asan) build_dir=build-asan; sanitize=address,undefined; targets="${COORD_BUILD_TARGETS:-}" ;;
  tsan) build_dir=build-tsan; sanitize=thread; targets="${COORD_BUILD_TARGETS:-$tsan_targets}" ;;
  *) echo "usage: $0 asan|tsan [--unit] [ctest args...]" >&2; exit 2 ;;
esac
if [[ ($unit == 1 || $control_plane == 1) && $mode != asan ]]; then
  echo "$0: --unit and --control-plane are for asan" >&2
  exit 2
fi
if [[ $control_plane == 1 ]]; then
  # Ninja's per-directory targets: every unit test of the control plane, whatever is added.
  targets="tests/unit/common/all tests/unit/agent/all tests/unit/coordinator/all"
  tsan_integration=""
fi

extra_cmake_args=""
if [[ $mode == tsan ]]; then
  COORD_BUILD_DIR=build-nocuda COORD_BUILD_TARGETS=gpt-rank COORD_CMAKE_ARGS="-DCOORD_WITH_CUDA=OFF" \
    scripts/build.sh
  extra_cmake_args="-DCOORD_TEST_GPT_RANK=$PWD/build-nocuda/bin/gpt-rank"
fi
COORD_BUILD_DIR="$build_dir" COORD_BUILD_TARGETS="$targets" \
  COORD_CMAKE_ARGS="-DCOORD_WITH_CUDA=OFF -DCOORD_SANITIZE=$sanitize $extra_cmake_args ${COORD_CMAKE_ARGS:-}" \
  scripts/build.sh

logs="$PWD/$build_dir/sanitizer-logs"
rm -rf "$logs"
mkdir -p "$logs"
# abort_on_error: a report kills the process with SIGABRT, so a test that waits for a
# daemon's exit status sees a crash, and a test binary's own report fails its test.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1:log_path=$logs/asan:log_exe_name=1"
# gcc's UBSan, linked beside ASan, ignores log_path and writes to stderr (a daemon's log):
# abort_on_error makes its report a crash the test sees.
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1"
# TSan: a report neither stops nor fails the process (exitcode=0): Debian's gRPC is not
# instrumented, so some reports are its own hand-offs, and scripts/tsan_triage.py decides
# at the end which are findings (docs/testing.md, "TSan").
export TSAN_OPTIONS="halt_on_error=0:exitcode=0:second_deadlock_stack=1:log_path=$logs/tsan:log_exe_name=1"
if [[ -f scripts/tsan.supp ]]; then TSAN_OPTIONS+=":suppressions=$PWD/scripts/tsan.supp"; fi
# Sanitized code runs 2-10x slower: deadlines inside tests scale by this (tests/support/wait.h).
export COORD_TEST_TIME_SCALE="${COORD_TEST_TIME_SCALE:-4}"

select=()
if [[ $mode == asan && $unit == 1 && $control_plane == 0 ]]; then
  select=(-L unit -LE gpu)
elif [[ $mode == asan && $control_plane == 0 ]]; then
  select=(-LE gpu)
else
  # ctest applies -I to the tests that -R/-E leave, so a -R/-E given here filters the
  # selection below instead of going to ctest (-L/-LE are not supported with tsan).
  include="" exclude="" rest=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      -R) include="$2"; shift 2 ;;
      -E) exclude="$2"; shift 2 ;;
      *) rest+=("$1"); shift ;;
    esac
  done
  set -- "${rest[@]}"
  # ctest selects by name or label; the control-plane tests are picked by the directory
  # of their executable, then listed by their ctest number (ctest -N) in a file for -I.
  (cd "$build_dir" && python3 -c '
import json, os, re, subprocess, sys
unit_dirs, integration = sys.argv[1].split(), sys.argv[2].split()
tests = json.loads(subprocess.run(["ctest", "--show-only=json-v1"], capture_output=True,
                                  text=True, check=True).stdout)["tests"]
picked = set()
for t in tests:
    command = t.get("command") or [""]
    if not command[0]:
        continue  # a placeholder for a test executable that is not built
    exe = os.path.relpath(command[0], os.getcwd())
    if os.path.dirname(exe) in unit_dirs or (
            os.path.dirname(exe) == "tests/integration" and os.path.basename(exe) in integration):
        picked.add(t["name"])
include, exclude = re.compile(sys.argv[3]), re.compile(sys.argv[4]) if sys.argv[4] else None
listing = subprocess.run(["ctest", "-N"], capture_output=True, text=True, check=True).stdout
numbers = [m.group(1) for m in re.finditer(r"Test +#(\d+): (\S+)", listing)
           if m.group(2) in picked and include.search(m.group(2))
           and not (exclude and exclude.search(m.group(2)))]
print("0,0,0," + ",".join(numbers))
' "$tsan_unit_dirs" "$tsan_integration" "$include" "$exclude") >"$build_dir/tsan-tests.txt"
  select=(-I "$PWD/$build_dir/tsan-tests.txt")
fi

status=0
(cd "$build_dir" && ctest "${select[@]}" --output-on-failure --timeout 1500 -j"$(nproc)" "$@") ||
  status=$?
if [[ $mode == tsan ]]; then
  # Every finding whole, and a count of what was put down to gRPC (the logs stay in $logs).
  python3 scripts/tsan_triage.py "$logs" || status=1
  exit "$status"
fi
reports=$(find "$logs" -type f | sort)
if [[ -n "$reports" ]]; then
  for f in $reports; do echo "=== sanitizer report: $f"; cat "$f"; done
  echo "sanitize.sh $mode: $(wc -l <<<"$reports") sanitizer report(s), above" >&2
  status=1
fi
exit "$status"
