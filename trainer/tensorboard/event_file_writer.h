// A TensorBoard event file (TensorBoard's summary/writer/event_file_writer.py): a
// new file named events.out.tfevents.<unix seconds, 10 digits>.<hostname>.<pid>.<n>
// in the log directory, its first record an Event with file_version "brain.Event:2",
// then one Event per scalar (Summary.Value.simple_value). Events are queued and
// written together by Flush, in one append (record_file.h): a killed run leaves every
// flushed event readable, and a failed write (full disk) drops that batch whole,
// logs one warning for the whole run and never stops training.
// Rank 0 only (the rank that logs); not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "trainer/tensorboard/record_file.h"

namespace trainer::tensorboard {

class EventFileWriter {
 public:
  // Creates `log_dir` (and parents) and a new event file in it, and writes the
  // file_version event. Any failure (a directory that cannot be created or written)
  // is an error naming the path. `pwrite` null: ::pwrite (tests inject faults).
  static coord::StatusOr<std::unique_ptr<EventFileWriter>> Create(const std::string& log_dir,
                                                                  PwriteFn pwrite = nullptr);

  // Queues one scalar event: `value` as float (simple_value), at `step`, stamped
  // `wall_time` (seconds since the epoch).
  void AddScalar(const std::string& tag, double value, int64_t step, double wall_time);
  // Appends the queued events. On failure they are dropped (counted); the first
  // failure is logged as a warning, later ones silently.
  void Flush();

  const std::string& path() const { return file_->path(); }
  int64_t dropped_events() const { return dropped_events_; }

  // The current time in seconds since the epoch, as events carry it.
  static double Now();

 private:
  explicit EventFileWriter(std::unique_ptr<RecordFile> file) : file_(std::move(file)) {}

  std::unique_ptr<RecordFile> file_;
  std::string pending_;  // framed records not yet appended
  int64_t pending_events_ = 0;
  int64_t dropped_events_ = 0;
  bool warned_ = false;
};

}  // namespace trainer::tensorboard
