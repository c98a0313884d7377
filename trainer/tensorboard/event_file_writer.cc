// Event file naming, the file_version record and scalar events (event_file_writer.h).
#include "trainer/tensorboard/event_file_writer.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "common/fs.h"
#include "common/logging.h"
#include "proto/tensorboard/event.pb.h"

namespace trainer::tensorboard {
namespace {

constexpr char kFileVersion[] = "brain.Event:2";
constexpr char kWriterName[] = "gpt-rank";
// Names tried in one second by one process before giving up (each taken name is
// some other writer's file, which is never touched).
constexpr int kMaxNameTries = 1000;

std::string Hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

std::string Serialized(const ::tensorboard::Event& e) {
  std::string bytes;
  e.SerializeToString(&bytes);
  return bytes;
}

}  // namespace

double EventFileWriter::Now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

coord::StatusOr<std::unique_ptr<EventFileWriter>> EventFileWriter::Create(
    const std::string& log_dir, PwriteFn pwrite) {
  RETURN_IF_ERROR(coord::MakeDirs(log_dir));
  const double now = Now();
  char stem[64];
  std::snprintf(stem, sizeof(stem), "events.out.tfevents.%010lld.",
                static_cast<long long>(now));
  const std::string prefix =
      coord::JoinPath(log_dir, stem + Hostname() + "." + std::to_string(getpid()) + ".");
  std::unique_ptr<RecordFile> file;
  for (int n = 0; file == nullptr; ++n) {
    auto f = RecordFile::Create(prefix + std::to_string(n), pwrite);
    if (f.ok()) {
      file = std::move(*f);
    } else if (f.status().code() != coord::StatusCode::kAlreadyExists || n + 1 >= kMaxNameTries) {
      return f.status();
    }
  }
  ::tensorboard::Event first;
  first.set_wall_time(now);
  first.set_file_version(kFileVersion);
  first.mutable_source_metadata()->set_writer(kWriterName);
  std::string record;
  AppendRecord(Serialized(first), &record);
  RETURN_IF_ERROR(file->Append(record));
  return std::unique_ptr<EventFileWriter>(new EventFileWriter(std::move(file)));
}

void EventFileWriter::AddScalar(const std::string& tag, double value, int64_t step,
                                double wall_time) {
  ::tensorboard::Event e;
  e.set_wall_time(wall_time);
  e.set_step(step);
  ::tensorboard::Summary::Value* v = e.mutable_summary()->add_value();
  v->set_tag(tag);
  v->set_simple_value(static_cast<float>(value));
  AppendRecord(Serialized(e), &pending_);
  ++pending_events_;
}

void EventFileWriter::Flush() {
  if (pending_.empty()) return;
  const coord::Status s = file_->Append(pending_);
  if (!s.ok()) {
    dropped_events_ += pending_events_;
    if (!warned_) {
      LOG_WARN << "tensorboard: " << s.message() << "; dropped " << pending_events_
               << " events; training goes on, later events are tried again (this warning "
                  "is not repeated)";
      warned_ = true;
    }
  }
  pending_.clear();
  pending_events_ = 0;
}

}  // namespace trainer::tensorboard
