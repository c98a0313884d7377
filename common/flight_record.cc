// The flight record's file layout, writer and reader (flight_record.h).
//
//   File   magic "COORDFR1", version, size, then two Copy blocks (64-byte aligned)
//   Copy   a sequence counter (odd: being written), then a Body
//   Body   rank, pid, iteration, phase, micro-batch, since, and a ring of kFlightRing
//          collective entries (slot (seq - 1) % kFlightRing)
// Plain little-endian structs: the writer and the reader are the same build on the
// same machine (gpt-rank and the agent next to it).
#include "common/flight_record.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <algorithm>
#include <cstring>

#include "common/clock.h"

namespace coord {

namespace {

constexpr char kMagic[8] = {'C', 'O', 'O', 'R', 'D', 'F', 'R', '1'};
constexpr uint32_t kVersion = 1;
constexpr int kReadTries = 200;

struct Entry {
  uint64_t seq;  // 0: an empty slot
  uint64_t bytes;
  int64_t started_ms;
  int64_t finished_ms;
  int32_t peer;
  uint8_t op;
  uint8_t failed;
  char group[12];  // NUL-padded
};
static_assert(sizeof(Entry) == 56, "the file layout");

struct Names {
  RankPhase phase;
  const char* name;
};
constexpr Names kPhaseNames[] = {
    {RankPhase::kUnknown, "unknown"},       {RankPhase::kStarting, "start-up"},
    {RankPhase::kDataLoading, "data loading"}, {RankPhase::kForward, "forward"},
    {RankPhase::kBackward, "backward"},     {RankPhase::kForwardBackward, "forward-backward"},
    {RankPhase::kOptimizer, "optimizer"},   {RankPhase::kEvaluation, "evaluation"},
    {RankPhase::kCheckpoint, "checkpoint"}, {RankPhase::kFinished, "finished"},
};
struct OpNames {
  CollectiveOp op;
  const char* name;
};
constexpr OpNames kOpNames[] = {
    {CollectiveOp::kNone, "none"},           {CollectiveOp::kAllReduce, "all_reduce"},
    {CollectiveOp::kReduceScatter, "reduce_scatter"}, {CollectiveOp::kAllGather, "all_gather"},
    {CollectiveOp::kBroadcast, "broadcast"}, {CollectiveOp::kBarrier, "barrier"},
    {CollectiveOp::kSend, "send"},           {CollectiveOp::kRecv, "recv"},
    {CollectiveOp::kSendRecv, "send/recv"},
};

}  // namespace

struct FlightRecorder::Body {
  int32_t rank;
  int32_t pid;
  int64_t iteration;
  int64_t phase_since_ms;
  int32_t micro_batch;
  uint8_t phase;
  uint8_t pad[3];
  uint64_t collectives;
  Entry ring[kFlightRing];
};

namespace {
struct alignas(64) Copy {
  std::atomic<uint64_t> seq;
  FlightRecorder::Body body;
};
static_assert(std::atomic<uint64_t>::is_always_lock_free,
              "the counters are shared between processes");
}  // namespace

struct FlightRecorder::File {
  char magic[8];
  uint32_t version;
  uint32_t size;
  Copy copies[2];
};

const char* RankPhaseName(RankPhase phase) {
  for (const Names& n : kPhaseNames) {
    if (n.phase == phase) return n.name;
  }
  return "unknown";
}

const char* CollectiveOpName(CollectiveOp op) {
  for (const OpNames& n : kOpNames) {
    if (n.op == op) return n.name;
  }
  return "unknown";
}

const CollectiveRecord* FlightSnapshot::InFlight() const {
  for (auto it = recent.rbegin(); it != recent.rend(); ++it) {
    if (it->finished_ms == 0) return &*it;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------
// Writer

StatusOr<std::unique_ptr<FlightRecorder>> FlightRecorder::Create(const std::string& path,
                                                                 int rank) {
  File* file = nullptr;
  const size_t size = sizeof(File);
  if (!path.empty()) {
    const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoStatus("flight record " + path, errno);
    if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
      const int err = errno;
      close(fd);
      return ErrnoStatus("flight record " + path + ": ftruncate", err);
    }
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    const int err = errno;
    close(fd);  // the mapping keeps the file
    if (p == MAP_FAILED) return ErrnoStatus("flight record " + path + ": mmap", err);
    file = new (p) File();  // zero-filled by ftruncate; counters start even (0)
    std::memcpy(file->magic, kMagic, sizeof(kMagic));
    file->version = kVersion;
    file->size = static_cast<uint32_t>(size);
  }
  std::unique_ptr<FlightRecorder> r(new FlightRecorder(path, file, size, rank));
  std::lock_guard<std::mutex> lock(r->mu_);
  r->PublishLocked();
  return r;
}

FlightRecorder::FlightRecorder(std::string path, File* file, size_t size, int rank)
    : path_(std::move(path)), file_(file), size_(size), body_(std::make_unique<Body>()) {
  std::memset(body_.get(), 0, sizeof(Body));
  body_->rank = rank;
  body_->pid = static_cast<int32_t>(getpid());
  body_->micro_batch = -1;
  body_->phase = static_cast<uint8_t>(RankPhase::kStarting);
  body_->phase_since_ms = WallMs();
}

FlightRecorder::~FlightRecorder() {
  if (file_ != nullptr) munmap(file_, size_);
}

void FlightRecorder::PublishLocked() {
  if (file_ == nullptr) return;
  // The counters follow this process's count, not what the file says (a reader cannot
  // disturb the writer): 2n before the n-th update, 2n + 1 during it.
  const uint64_t s = 2 * publishes_++;
  for (Copy& c : file_->copies) {
    c.seq.store(s + 1, std::memory_order_relaxed);
    // The odd counter is visible before any byte of the body changes.
    std::atomic_thread_fence(std::memory_order_release);
    std::memcpy(&c.body, body_.get(), sizeof(Body));
    c.seq.store(s + 2, std::memory_order_release);
  }
}

void FlightRecorder::SetIteration(int64_t iteration) {
  std::lock_guard<std::mutex> lock(mu_);
  if (body_->iteration == iteration) return;
  body_->iteration = iteration;
  PublishLocked();
}

void FlightRecorder::SetPhase(RankPhase phase, int32_t micro_batch) {
  std::lock_guard<std::mutex> lock(mu_);
  if (body_->phase == static_cast<uint8_t>(phase) && body_->micro_batch == micro_batch) return;
  body_->phase = static_cast<uint8_t>(phase);
  body_->micro_batch = micro_batch;
  body_->phase_since_ms = WallMs();
  PublishLocked();
}

uint64_t FlightRecorder::BeginCollective(CollectiveOp op, const char* group, uint64_t bytes,
                                         int32_t peer) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t seq = ++body_->collectives;
  Entry& e = body_->ring[(seq - 1) % kFlightRing];
  std::memset(&e, 0, sizeof(e));
  e.seq = seq;
  e.op = static_cast<uint8_t>(op);
  e.bytes = bytes;
  e.peer = peer;
  e.started_ms = WallMs();
  std::strncpy(e.group, group, sizeof(e.group) - 1);
  PublishLocked();
  return seq;
}

void FlightRecorder::EndCollective(uint64_t seq, bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = body_->ring[(seq - 1) % kFlightRing];
  if (e.seq != seq) return;  // overwritten: 32 newer collectives began meanwhile
  e.finished_ms = std::max<int64_t>(WallMs(), 1);  // 0 means in flight
  e.failed = ok ? 0 : 1;
  PublishLocked();
}

namespace {

FlightSnapshot ToSnapshot(const FlightRecorder::Body& b) {
  FlightSnapshot s;
  s.rank = b.rank;
  s.pid = b.pid;
  s.iteration = b.iteration;
  s.phase = static_cast<RankPhase>(b.phase);
  s.micro_batch = b.micro_batch;
  s.phase_since_ms = b.phase_since_ms;
  s.collectives = b.collectives;
  const uint64_t first = b.collectives > kFlightRing ? b.collectives - kFlightRing + 1 : 1;
  for (uint64_t seq = first; seq <= b.collectives; ++seq) {
    const Entry& e = b.ring[(seq - 1) % kFlightRing];
    if (e.seq != seq) continue;
    CollectiveRecord r;
    r.seq = e.seq;
    r.op = static_cast<CollectiveOp>(e.op);
    r.group.assign(e.group, strnlen(e.group, sizeof(e.group)));
    r.bytes = e.bytes;
    r.peer = e.peer;
    r.started_ms = e.started_ms;
    r.finished_ms = e.finished_ms;
    r.failed = e.failed != 0;
    s.recent.push_back(std::move(r));
  }
  return s;
}

}  // namespace

FlightSnapshot FlightRecorder::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ToSnapshot(*body_);
}

// ---------------------------------------------------------------------------
// Reader

namespace {

// Maps `path` read-only after checking its header; the caller unmaps (size).
StatusOr<const FlightRecorder::File*> MapForRead(const std::string& path, int prot) {
  const int fd = open(path.c_str(), (prot & PROT_WRITE) ? O_RDWR | O_CLOEXEC : O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound("no flight record at " + path);
    return ErrnoStatus("flight record " + path, errno);
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || st.st_size != static_cast<off_t>(sizeof(FlightRecorder::File))) {
    close(fd);
    return InvalidArgument(path + " is not a flight record of this version (size " +
                           std::to_string(st.st_size) + ")");
  }
  void* p = mmap(nullptr, sizeof(FlightRecorder::File), prot, MAP_SHARED, fd, 0);
  const int err = errno;
  close(fd);
  if (p == MAP_FAILED) return ErrnoStatus("flight record " + path + ": mmap", err);
  const auto* f = static_cast<const FlightRecorder::File*>(p);
  if (std::memcmp(f->magic, kMagic, sizeof(kMagic)) != 0 || f->version != kVersion ||
      f->size != sizeof(FlightRecorder::File)) {
    munmap(p, sizeof(FlightRecorder::File));
    return InvalidArgument(path + " is not a flight record of this version");
  }
  return f;
}

}  // namespace

StatusOr<FlightSnapshot> ReadFlightRecord(const std::string& path) {
  ASSIGN_OR_RETURN(const FlightRecorder::File* f, MapForRead(path, PROT_READ));
  auto body = std::make_unique<FlightRecorder::Body>();
  bool got = false;
  uint64_t got_seq = 0;
  for (int t = 0; t < kReadTries && !got; ++t) {
    for (const Copy& c : f->copies) {
      const uint64_t s1 = c.seq.load(std::memory_order_acquire);
      if (s1 % 2 != 0 || (got && s1 <= got_seq)) continue;
      FlightRecorder::Body tmp;
      std::memcpy(&tmp, const_cast<const FlightRecorder::Body*>(&c.body), sizeof(tmp));
      std::atomic_thread_fence(std::memory_order_acquire);
      if (c.seq.load(std::memory_order_relaxed) != s1) continue;
      *body = tmp;
      got = true;
      got_seq = s1;
    }
    if (!got) usleep(100);
  }
  munmap(const_cast<FlightRecorder::File*>(f), sizeof(FlightRecorder::File));
  if (!got) return Unavailable("flight record " + path + ": no consistent copy (a writer raced every read)");
  return ToSnapshot(*body);
}

Status MarkFlightCopyTornForTest(const std::string& path, int copy) {
  ASSIGN_OR_RETURN(const FlightRecorder::File* f, MapForRead(path, PROT_READ | PROT_WRITE));
  auto* w = const_cast<FlightRecorder::File*>(f);
  std::atomic<uint64_t>& seq = w->copies[copy].seq;
  if (seq.load() % 2 == 0) seq.fetch_add(1);
  std::memset(&w->copies[copy].body, 0xab, sizeof(FlightRecorder::Body));  // half-written bytes
  munmap(w, sizeof(FlightRecorder::File));
  return Status::Ok();
}

}  // namespace coord
