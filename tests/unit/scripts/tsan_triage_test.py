#!/usr/bin/env python3
"""scripts/tsan_triage.py: which ThreadSanitizer reports are Debian gRPC's own hand-offs
and which are findings. The reports below are cut from real ones of build-tsan/ (the
stacks' shape, paths and modules as TSan prints them)."""
import os
import subprocess
import sys
import tempfile
import unittest

TRIAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "scripts",
                      "tsan_triage.py")

SEP = "==================\n"

# gRPC's inline header reads the std::function it keeps in its callback tag, which our
# thread built: gRPC's hand-off.
GRPC_HANDOFF = SEP + """WARNING: ThreadSanitizer: data race (pid=16045)
  Read of size 8 at 0x7b0c00014220 by thread T20:
    #0 std::_Function_base::_M_empty() const /usr/include/c++/12/bits/std_function.h:247 (coordd+0x36b9b2)
    #1 std::function<void (bool)>::operator()(bool) const /usr/include/c++/12/bits/std_function.h:591 (coordd+0x36b9b2)
    #2 grpc::internal::CallbackWithSuccessTag::Run(bool) /usr/include/grpcpp/support/callback_common.h:212 (coordd+0x36b9b2)
    #3 <null> <null> (libgrpc++.so.1.51+0x897ba)

  Previous write of size 8 at 0x7b0c00014220 by thread T12:
    #0 operator new(unsigned long) ../../../../src/libsanitizer/tsan/tsan_new_delete.cpp:64 (libtsan.so.2+0x87323)
    #1 _M_create<coord::coordinator::JobManager::MonitorLoop()::<lambda(const coord::agent::AgentEvent&)> > /usr/include/c++/12/bits/std_function.h:161 (coordd+0x14025c)
    #2 coord::coordinator::JobManager::MonitorLoop() ../coordinator/job_supervision.cc:682 (coordd+0x14025c)

  Location is heap block of size 48 at 0x7b0c00014220 allocated by thread T12:
    #0 operator new(unsigned long) ../../../../src/libsanitizer/tsan/tsan_new_delete.cpp:64 (libtsan.so.2+0x87323)

SUMMARY: ThreadSanitizer: data race /usr/include/c++/12/bits/std_function.h:247 in std::_Function_base::_M_empty() const
"""

# Two of our threads touch a map, one of them called back by gRPC: both accesses are
# ours (the first frame past the standard library is our code), so it is a finding.
OURS = SEP + """WARNING: ThreadSanitizer: data race (pid=11700)
  Read of size 8 at 0x7b24000000f8 by thread T14:
    #0 std::_Hashtable<int, int>::_M_begin() const /usr/include/c++/12/bits/hashtable.h:466 (coord-agent+0x119c08)
    #1 ~RoleCheck ../common/rpc_util.cc:24 (coord-agent+0x11597b)
    #2 grpc::AuthMetadataProcessorAyncWrapper::Destroy(void*) <null> (libgrpc++.so.1.51+0x9cc69)

  Previous write of size 8 at 0x7b24000000f8 by thread T8 (mutexes: write M357):
    #0 std::unordered_map<int, int>::operator[](int const&) /usr/include/c++/12/bits/unordered_map.h:980 (coord-agent+0x1161e6)
    #1 Process ../common/rpc_util.cc:53 (coord-agent+0x1161e6)
    #2 grpc::AuthMetadataProcessorAyncWrapper::InvokeProcessor(grpc_auth_context*) <null> (libgrpc++.so.1.51+0x9d255)

SUMMARY: ThreadSanitizer: data race /usr/include/c++/12/bits/hashtable.h:466
"""

# One access is ours, the other's stack is lost: a finding, not gRPC's.
LOST_STACK = SEP + """WARNING: ThreadSanitizer: data race (pid=11700)
  Atomic read of size 1 at 0x7b24000000c0 by thread T2:
    #0 pthread_mutex_lock ../../../../src/libsanitizer/sanitizer_common/sanitizer_common_interceptors.inc:4324 (libtsan.so.2+0x558e1)
    #1 std::mutex::lock() /usr/include/c++/12/bits/std_mutex.h:100 (coord-agent+0x115cbc)
    #2 Process ../common/rpc_util.cc:38 (coord-agent+0x115cbc)

  Previous write of size 8 at 0x7b24000000c0 by main thread:
    [failed to restore the stack]

SUMMARY: ThreadSanitizer: data race ../common/rpc_util.cc:38 in Process
"""

# A protobuf message gRPC parses on its thread: generated code on top, gRPC below.
PROTO_PARSE = SEP + """WARNING: ThreadSanitizer: data race (pid=1062)
  Read of size 4 at 0x7b5800030e4c by thread T15:
    #0 coord::agent::AgentEvent::kind_case() const proto/gen/proto/agent.pb.h:8789 (coordd+0x19ed24)
    #1 google::protobuf::MessageLite::ParseFromZeroCopyStream(google::protobuf::io::ZeroCopyInputStream*) <null> (libprotobuf.so.32+0x11f589)
    #2 grpc::internal::CallOpRecvMessage<coord::agent::AgentEvent>::FinishOp(bool*) /usr/include/grpcpp/impl/call_op_set.h:451 (coordd+0x1f4fb8)

  Previous write of size 8 at 0x7b5800030e48 by thread T1:
    #0 operator new(unsigned long) ../../../../src/libsanitizer/tsan/tsan_new_delete.cpp:64 (libtsan.so.2+0x87323)
    #1 Watch ../coordinator/grpc_agent_client.cc:147 (coordd+0x62eb6)

SUMMARY: ThreadSanitizer: data race proto/gen/proto/agent.pb.h:8789
"""


def triage(*logs):
    with tempfile.TemporaryDirectory() as d:
        for i, text in enumerate(logs):
            with open(os.path.join(d, "tsan.coordd.%d" % (100 + i)), "w") as f:
                f.write(text)
        r = subprocess.run([sys.executable, TRIAGE, d], capture_output=True, text=True)
        return r.returncode, r.stdout


class TsanTriageTest(unittest.TestCase):
    def test_grpc_handoffs_are_counted_not_findings(self):
        code, out = triage(GRPC_HANDOFF + PROTO_PARSE)
        self.assertEqual(code, 0, out)
        self.assertIn("2 put down to gRPC's own hand-offs", out)
        self.assertNotIn("finding", out)

    def test_a_race_between_our_own_accesses_is_a_finding_shown_whole(self):
        code, out = triage(GRPC_HANDOFF, OURS + LOST_STACK)
        self.assertEqual(code, 1, out)
        self.assertIn("2 finding: data race", out)
        self.assertIn("1 put down to gRPC's own hand-offs", out)
        self.assertIn("~RoleCheck ../common/rpc_util.cc:24", out)
        self.assertIn("[failed to restore the stack]", out)

    def test_no_reports_is_clean(self):
        code, out = triage("")
        self.assertEqual(code, 0, out)


if __name__ == "__main__":
    unittest.main()
