#!/usr/bin/env python3
"""Sorts the ThreadSanitizer reports of a `scripts/sanitize.sh tsan` run (docs/testing.md, "TSan").

Debian's gRPC, Protobuf and Abseil are not instrumented, so TSan cannot see how gRPC hands
its own objects between its threads, and it reports gRPC's inline headers (compiled into
our binaries) touching them. A report is put down to gRPC when one of its two accesses is
gRPC's code at work: the first frame from the top that is neither TSan's interceptor, the
C++ standard library nor Protobuf (generated or inline) is gRPC's (its headers or its
libraries). Every other report is a finding: both accesses are ours (or one is and the
other's stack is lost), and no rule of this file hides it.

Usage: tsan_triage.py LOG_DIR [--show-grpc]
Prints each finding whole, a count per class, and exits 1 if there is a finding. The
reports put down to gRPC are counted and listed by file, so they can be read.
"""
import collections
import os
import re
import sys

FRAME = re.compile(r"^\s+#\d+ (.*?) (\S+?)(?::\d+)?(?::\d+)? \(([^+)]+)(?:\+0x[0-9a-f]+)?\)\s*$")

# Frames that only carry an access for someone else: TSan's interceptors, libstdc++,
# Protobuf messages (the generated code and its inline headers).
PASS_THROUGH = (
    re.compile(r"/libsanitizer/|/tsan/|sanitizer_common"),
    re.compile(r"^/usr/include/c\+\+/|^/usr/include/x86_64-linux-gnu/c\+\+/"),
    re.compile(r"^/usr/include/google/protobuf/"),
    re.compile(r"(^|/)proto/gen/"),
)
PASS_THROUGH_MODULES = re.compile(r"libtsan\.so|libstdc\+\+\.so|libprotobuf\.so")
GRPC_FILES = re.compile(r"^/usr/include/(grpcpp|grpc)/")
GRPC_MODULES = re.compile(r"lib(grpc|gpr|upb|address_sorting|absl_)[^/]*\.so")


def owner(stack_lines):
    """'grpc', 'ours', or 'unknown' (no frames: TSan failed to restore the stack)."""
    for line in stack_lines:
        m = FRAME.match(line)
        if not m:
            continue
        _, src, module = m.groups()
        if any(p.search(src) for p in PASS_THROUGH) or (
                src == "<null>" and PASS_THROUGH_MODULES.search(module)):
            continue
        if GRPC_FILES.search(src) or GRPC_MODULES.search(module):
            return "grpc"
        return "ours"
    return "unknown"


def access_stacks(report):
    """The stacks of the two racing accesses (the first two blocks of a data race)."""
    blocks, cur = [], None
    for line in report.splitlines():
        if re.match(r"^  (Read|Write|Atomic|Previous)", line):
            cur = []
            blocks.append(cur)
        elif re.match(r"^  (Location|Mutex|Thread|Stack)", line) or line.startswith("SUMMARY"):
            cur = None
        elif cur is not None:
            cur.append(line)
    return blocks[:2]


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    log_dir = sys.argv[1]
    show_grpc = "--show-grpc" in sys.argv[2:]
    counts = collections.Counter()
    grpc_files = collections.Counter()
    findings = []
    for name in sorted(os.listdir(log_dir)):
        path = os.path.join(log_dir, name)
        with open(path, errors="replace") as f:
            text = f.read()
        for report in text.split("==================\n"):
            head = next((l for l in report.splitlines() if l.startswith("WARNING: ThreadSanitizer")),
                        None)
            if head is None:
                continue
            kind = head.split("ThreadSanitizer: ", 1)[1].split(" (pid")[0]
            owners = [owner(s) for s in access_stacks(report)] if "data race" in kind else []
            if "grpc" in owners:
                counts["put down to gRPC's own hand-offs"] += 1
                grpc_files[name] += 1
                if show_grpc:
                    print("=== gRPC (%s):\n%s" % (name, report))
                continue
            counts["finding: " + kind] += 1
            findings.append((name, report))
    for name, report in findings:
        print("=== finding (%s):\n%s" % (name, report))
    for what, n in sorted(counts.items()):
        print("tsan_triage: %5d %s" % (n, what))
    if grpc_files:
        print("tsan_triage: gRPC's, by log: " + ", ".join(
            "%s %d" % (k, v) for k, v in sorted(grpc_files.items())))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
