// FollowJob: logs to stdout, a progress line on stderr, a signal thread for Ctrl-C,
// the final summary.
#include "coordinator/cli/follow.h"

#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <thread>

#include "common/clock.h"
#include "coordinator/cli/cli.h"
#include "coordinator/cli/format.h"
#include "coordinator/cli/progress_view.h"

namespace coord::cli {

namespace {

constexpr int kProgressPollMs = 1000;
constexpr int64_t kPlainEveryMs = 10000;  // without a terminal: a line at most this often

// The job's progress line on stderr while its logs go to stdout. On a terminal the line
// sits under the logs and is redrawn in place: cleared before each batch of log lines
// and drawn again after it. Otherwise a plain "coordctl: progress: ..." line when the
// iteration moved, at most every 10 s. Thread-safe (the log and the poll threads).
class ProgressDisplay {
 public:
  ProgressDisplay() : tty_(isatty(STDERR_FILENO) == 1) {}

  template <typename Fn>
  void PrintLogs(Fn print) {
    std::lock_guard<std::mutex> lock(mu_);
    Erase();
    print();
    std::cout.flush();
    Draw();
  }
  void Update(const coordinator::JobStatus& job) {
    if (job.iteration() < 0) return;  // nothing to show yet (or a program without records)
    std::lock_guard<std::mutex> lock(mu_);
    if (tty_) {
      struct winsize ws {};
      const size_t width = ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1
                               ? ws.ws_col - 1
                               : 119;
      Erase();
      line_ = ProgressLine(job, width);
      Draw();
      return;
    }
    const int64_t now = MonoMs();
    if (job.iteration() == last_iteration_ || now - last_plain_ms_ < kPlainEveryMs) return;
    last_iteration_ = job.iteration();
    last_plain_ms_ = now;
    std::cerr << "coordctl: progress: " << ProgressLine(job) << std::endl;
  }
  void Finish() {
    std::lock_guard<std::mutex> lock(mu_);
    Erase();
    line_.clear();
  }

 private:
  void Erase() {
    if (tty_ && drawn_) std::cerr << "\r\033[K" << std::flush;
    drawn_ = false;
  }
  void Draw() {
    if (!tty_ || line_.empty()) return;
    std::cerr << line_ << std::flush;
    drawn_ = true;
  }

  const bool tty_;
  std::mutex mu_;
  std::string line_;   // guarded by mu_
  bool drawn_ = false; // guarded by mu_
  int64_t last_iteration_ = -1, last_plain_ms_ = INT64_MIN / 2;  // guarded by mu_
};

}  // namespace

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

  ProgressDisplay display;
  std::mutex poll_mu;
  std::condition_variable poll_cv;
  std::thread poll_thread([&] {
    std::unique_lock<std::mutex> lock(poll_mu);
    while (!done) {
      lock.unlock();
      // The line needs the counts and the slowest rank, not every rank's row.
      auto job = client.GetJob(ProgressRequest(job_id, 1));
      if (job.ok()) display.Update(*job);
      lock.lock();
      poll_cv.wait_for(lock, std::chrono::milliseconds(kProgressPollMs), [&] { return done.load(); });
    }
  });

  coordinator::StreamLogsRequest req;
  req.set_job_id(job_id);
  req.set_rank(-1);
  req.set_follow(true);
  Status st = client.StreamLogs(req, [&display](const coordinator::LogBatch& batch) {
    display.PrintLogs([&] {
      for (const auto& line : batch.lines()) std::cout << FormatLogLine(line) << "\n";
    });
  });
  {
    std::lock_guard<std::mutex> lock(poll_mu);
    done = true;
  }
  poll_cv.notify_all();
  poll_thread.join();
  display.Finish();
  int code = kExitOk;
  if (!st.ok()) {
    code = ReportError(st);
  } else {
    auto job = client.GetJob(ProgressRequest(job_id, 1));  // the summary and the failure
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
  signal_thread.join();
  return code;
}

}  // namespace coord::cli
