// FollowJob: logs to stdout, a signal thread for Ctrl-C, the final summary.
#include "coordinator/cli/follow.h"

#include <signal.h>

#include <atomic>
#include <iostream>
#include <thread>

#include "coordinator/cli/cli.h"
#include "coordinator/cli/format.h"

namespace coord::cli {

void BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int FollowJob(CoordinatorClient& client, const std::string& job_id,
              const std::function<void()>& on_interrupt) {
  std::atomic<bool> done{false};
  std::atomic<bool> interrupted{false};
  // Signals are blocked everywhere; this thread alone takes them, so the
  // reaction (an RPC) runs in a normal thread and not in a signal handler.
  std::thread signal_thread([&] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    struct timespec tick = {0, 100 * 1000 * 1000};
    while (!done) {
      int sig = sigtimedwait(&set, nullptr, &tick);
      if (sig > 0 && !interrupted.exchange(true)) {
        std::cerr << "\ncoordctl: interrupted\n";
        on_interrupt();
      }
    }
  });

  coordinator::StreamLogsRequest req;
  req.set_job_id(job_id);
  req.set_rank(-1);
  req.set_follow(true);
  Status st = client.StreamLogs(req, [](const coordinator::LogBatch& batch) {
    for (const auto& line : batch.lines()) std::cout << FormatLogLine(line) << "\n";
    std::cout.flush();
  });
  int code = kExitOk;
  if (!st.ok()) {
    code = ReportError(st);
  } else {
    auto job = client.GetJob(job_id);
    if (!job.ok()) {
      code = ReportError(job.status());
    } else {
      std::cerr << "coordctl: " << OneLineSummary(*job) << "\n";
      if (job->state() == coordinator::FAILED && !job->failure().stderr_tail().empty()) {
        std::cerr << "last stderr of rank " << job->failure().rank() << ":\n";
        for (const auto& l : job->failure().stderr_tail()) std::cerr << "    " << l << "\n";
      }
      code = job->state() == coordinator::SUCCEEDED ? kExitOk : kExitJobFailed;
    }
  }
  done = true;
  signal_thread.join();
  return code;
}

}  // namespace coord::cli
