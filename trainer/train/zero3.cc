// ZeRO-3 partitioned parameters, gathered module by module (zero3.h).
#include "trainer/train/zero3.h"

#include <algorithm>
#include <cstring>
#include <set>

namespace gpt_rank::train {

namespace {

constexpr size_t kNone = static_cast<size_t>(-1);

size_t Overlap(size_t b0, size_t e0, size_t b1, size_t e1) {
  const size_t b = std::max(b0, b1), e = std::min(e0, e1);
  return e > b ? e - b : 0;
}

}  // namespace

// One tensor of a module: flat [flat, flat + len) lives at buf in the module's buffer;
// a gathered (non-persistent) one arrives at `packed` first, a persistent one is
// copied from replica_[replica].
struct Zero3Params::Segment {
  size_t flat = 0, len = 0, buf = 0, packed = 0;
  bool persistent = false;
  size_t replica = kNone;
};

struct Zero3Params::ModuleState {
  std::vector<Segment> segs;        // in flat order
  size_t numel = 0, gathered = 0;   // all elements; the non-persistent ones
  std::vector<size_t> gather_counts;  // per rank: its non-persistent elements of the module
  std::unique_ptr<float[]> params, grads;
  dist::CollectiveQueue::Ticket gather = 0;  // the queued gather into params (0: none)
  bool in_use = false;
};

Zero3Params::Zero3Params(const trainer::GptParamLayout& layout, dist::Communicator* dp,
                         const Zero3Options& options)
    : layout_(layout), dp_(dp), options_(options) {
  options_.reduce_bucket = std::max<size_t>(options_.reduce_bucket, 1);
  const size_t n = layout_.num_params();
  const int ranks = dp_->size();
  counts_ = dist::EvenCounts(n, ranks);
  std::vector<size_t> offsets(static_cast<size_t>(ranks) + 1, 0);
  for (int r = 0; r < ranks; ++r) offsets[r + 1] = offsets[r] + counts_[static_cast<size_t>(r)];
  begin_ = offsets[static_cast<size_t>(dp_->rank())];
  end_ = offsets[static_cast<size_t>(dp_->rank()) + 1];
  params_.assign(end_ - begin_, 0.0f);
  grads_.assign(end_ - begin_, 0.0f);

  const auto& tensors = layout_.tensors();
  std::vector<size_t> replica_at(tensors.size(), kNone);
  replica_counts_.assign(static_cast<size_t>(ranks), 0);
  size_t replica = 0;
  for (size_t k = 0; k < tensors.size(); ++k) {
    const trainer::ParamTensorInfo& t = tensors[k];
    if (t.numel >= options_.persistence_threshold) continue;
    replica_at[k] = replica;
    replica += t.numel;
    for (int r = 0; r < ranks; ++r) {
      replica_counts_[static_cast<size_t>(r)] +=
          Overlap(t.offset, t.offset + t.numel, offsets[r], offsets[r + 1]);
    }
  }
  replica_.assign(replica, 0.0f);

  // Modules: their tensors by index in layout.tensors() (ZeRO-3 holds the whole model,
  // so whole-model and local indices agree), in flat order.
  const int L = layout_.config().num_layers;
  std::vector<std::vector<size_t>> members;
  auto add_module = [&](trainer::Module m) {
    std::vector<size_t> ids;
    for (int global : layout_.ModuleMembers(m)) {
      ids.push_back(static_cast<size_t>(layout_.LocalIndex(global)));
    }
    members.push_back(std::move(ids));
  };
  add_module({trainer::ModuleKind::kEmbedding, -1});
  for (int l = 0; l < L; ++l) add_module({trainer::ModuleKind::kLayer, l});
  add_module({trainer::ModuleKind::kHead, -1});
  modules_.resize(members.size());
  for (size_t i = 0; i < members.size(); ++i) {
    ModuleState& s = modules_[i];
    s.gather_counts.assign(static_cast<size_t>(ranks), 0);
    for (size_t k : members[i]) {
      const trainer::ParamTensorInfo& t = tensors[k];
      Segment seg;
      seg.flat = t.offset;
      seg.len = t.numel;
      seg.buf = s.numel;
      seg.persistent = replica_at[k] != kNone;
      seg.replica = replica_at[k];
      seg.packed = s.gathered;
      s.numel += t.numel;
      if (!seg.persistent) {
        s.gathered += t.numel;
        for (int r = 0; r < ranks; ++r) {
          s.gather_counts[static_cast<size_t>(r)] +=
              Overlap(t.offset, t.offset + t.numel, offsets[r], offsets[r + 1]);
        }
      }
      s.segs.push_back(seg);
    }
  }
  // Reuse distances over one micro-batch's parameter uses (cyclic: the next
  // micro-batch's forward follows backward): forward embedding, layers, head; backward
  // head, layers L-1..0 (the embedding backward needs no parameters).
  std::vector<int>& trace = trace_;
  for (int i = 0; i <= L + 1; ++i) trace.push_back(i);
  for (int i = L + 1; i >= 1; --i) trace.push_back(i);
  auto distance = [&](size_t pos) {
    const int index = trace[pos];
    std::set<int> between;
    size_t d = 0;
    for (size_t q = (pos + 1) % trace.size(); trace[q] != index; q = (q + 1) % trace.size()) {
      if (between.insert(trace[q]).second) d += modules_[static_cast<size_t>(trace[q])].numel;
    }
    return d;
  };
  reuse_forward_.assign(modules_.size(), 0);
  reuse_backward_.assign(modules_.size(), 0);
  for (size_t pos = 0; pos < trace.size(); ++pos) {
    const bool backward = pos > static_cast<size_t>(L + 1);
    (backward ? reuse_backward_ : reuse_forward_)[static_cast<size_t>(trace[pos])] = distance(pos);
  }
  queue_ = std::make_unique<dist::CollectiveQueue>(
      ranks > 1 && (options_.prefetch_bucket > 0 || options_.overlap_comm));
}

Zero3Params::~Zero3Params() { (void)queue_->Drain(); }  // no task may outlive the buffers

coord::Status Zero3Params::Collective(dist::CollectiveQueue::Task task) {
  return queue_->Wait(queue_->Submit(std::move(task)));
}

coord::Status Zero3Params::Drain() { return queue_->Drain(); }

size_t Zero3Params::TracePosition(int index, bool backward) const {
  const int last = static_cast<int>(modules_.size()) - 1;  // the head
  return backward ? static_cast<size_t>(last + 1 + (last - index)) : static_cast<size_t>(index);
}

int Zero3Params::Index(trainer::Module m) const {
  switch (m.kind) {
    case trainer::ModuleKind::kEmbedding:
      return 0;
    case trainer::ModuleKind::kLayer:
      return 1 + m.layer;
    case trainer::ModuleKind::kHead:
      break;
  }
  return static_cast<int>(modules_.size()) - 1;
}

size_t Zero3Params::ReuseDistance(int index, bool backward) const {
  return (backward ? reuse_backward_ : reuse_forward_)[static_cast<size_t>(index)];
}

trainer::ModuleView Zero3Params::Views(int index, bool params, bool grads) const {
  const ModuleState& s = modules_[static_cast<size_t>(index)];
  const int head = static_cast<int>(modules_.size()) - 1;
  const trainer::Module m = index == 0      ? trainer::Module{trainer::ModuleKind::kEmbedding, -1}
                            : index == head ? trainer::Module{trainer::ModuleKind::kHead, -1}
                                            : trainer::Module{trainer::ModuleKind::kLayer, index - 1};
  const std::vector<int> members = layout_.ModuleMembers(m);  // the order of s.segs
  auto tensors = [&](float* base) {
    return layout_.BindModule(m, [&](int global) -> float* {
      for (size_t k = 0; k < members.size(); ++k) {
        if (members[k] == global) return base + s.segs[k].buf;
      }
      return nullptr;
    });
  };
  trainer::ModuleView v;
  if (params) v.params = tensors(s.params.get());
  if (grads) v.grads = tensors(s.grads.get());
  return v;
}

void Zero3Params::StartGather(int index) {
  ModuleState& s = modules_[static_cast<size_t>(index)];
  s.params.reset(new float[s.numel]);
  live_ += s.numel;
  peak_live_ = std::max(peak_live_, live_);
  float* buf = s.params.get();
  s.gather = queue_->Submit([this, index, buf] { return FillAndGather(index, buf); });
}

// On the queue: reads the partition and the replica, which change only after a Drain.
coord::Status Zero3Params::FillAndGather(int index, float* buf) {
  const ModuleState& s = modules_[static_cast<size_t>(index)];
  // This rank's block of the packed (non-persistent, flat-order) elements: rank r's
  // block is its range's part, so the all-gather's blocks are in rank order.
  for (const Segment& seg : s.segs) {
    if (seg.persistent) continue;
    const size_t b = std::max(seg.flat, begin_), e = std::min(seg.flat + seg.len, end_);
    if (b < e) {
      std::memcpy(buf + seg.packed + (b - seg.flat), params_.data() + (b - begin_),
                  (e - b) * sizeof(float));
    }
  }
  if (s.gathered > 0) {
    RETURN_IF_ERROR(dp_->AllGather(buf, s.gather_counts, dist::DataType::kFloat32));
  }
  // Unpack in place, last segment first: packed <= buf, so no source is overwritten
  // before it moves.
  for (auto it = s.segs.rbegin(); it != s.segs.rend(); ++it) {
    if (!it->persistent && it->packed != it->buf) {
      std::memmove(buf + it->buf, buf + it->packed, it->len * sizeof(float));
    }
  }
  for (const Segment& seg : s.segs) {
    if (seg.persistent) {
      std::memcpy(buf + seg.buf, replica_.data() + seg.replica, seg.len * sizeof(float));
    }
  }
  return coord::Status::Ok();
}

void Zero3Params::Prefetch(size_t pos) {
  size_t bucket = 0;
  for (size_t q = pos + 1; q < trace_.size() && bucket < options_.prefetch_bucket; ++q) {
    const int index = trace_[q];
    ModuleState& s = modules_[static_cast<size_t>(index)];
    if (s.params != nullptr) continue;  // kept, or already on its way
    if (live_ + s.numel > options_.max_live) return;
    StartGather(index);
    kept_.push_back(index);  // evictable until used
    bucket += s.numel;
  }
}

// On the queue with overlap_comm: only it writes grads_ until a Drain.
coord::Status Zero3Params::ReduceGrads(int index, float* buf) {
  const ModuleState& s = modules_[static_cast<size_t>(index)];
  const int ranks = dp_->size();
  std::vector<size_t> offsets(static_cast<size_t>(ranks) + 1, 0);
  for (int r = 0; r < ranks; ++r) offsets[r + 1] = offsets[r] + counts_[static_cast<size_t>(r)];
  std::vector<size_t> counts(static_cast<size_t>(ranks));
  // Runs of segments contiguous in the flat buffer (a layer is one run; the head two).
  for (size_t k = 0; k < s.segs.size();) {
    size_t end = k + 1;
    while (end < s.segs.size() && s.segs[end].flat == s.segs[end - 1].flat + s.segs[end - 1].len &&
           s.segs[end].buf == s.segs[end - 1].buf + s.segs[end - 1].len) {
      ++end;
    }
    const size_t fb = s.segs[k].flat, fe = s.segs[end - 1].flat + s.segs[end - 1].len;
    float* run = buf + s.segs[k].buf;
    for (size_t cb = fb; cb < fe; cb += options_.reduce_bucket) {
      const size_t ce = std::min(fe, cb + options_.reduce_bucket);
      for (int r = 0; r < ranks; ++r) {
        counts[static_cast<size_t>(r)] = Overlap(cb, ce, offsets[r], offsets[r + 1]);
      }
      RETURN_IF_ERROR(dp_->ReduceScatterSum(run + (cb - fb), counts, dist::DataType::kFloat32));
      const size_t b = std::max(cb, begin_), e = std::min(ce, end_);
      for (size_t x = b; x < e; ++x) grads_[x - begin_] += run[x - fb];
    }
    k = end;
  }
  return coord::Status::Ok();
}

void Zero3Params::Free(int index) {
  ModuleState& s = modules_[static_cast<size_t>(index)];
  if (s.gather != 0) {
    (void)queue_->Wait(s.gather);  // its error stays with the queue for the next Wait
    s.gather = 0;
  }
  if (s.params != nullptr) {
    s.params.reset();
    live_ -= s.numel;
  }
  kept_.erase(std::remove(kept_.begin(), kept_.end(), index), kept_.end());
}

coord::StatusOr<trainer::ModuleView> Zero3Params::Acquire(trainer::Module m, trainer::Pass pass) {
  const int i = Index(m);
  ModuleState& s = modules_[static_cast<size_t>(i)];
  if (s.in_use) {
    return coord::Internal("ZeRO-3: module " + std::to_string(i) + " acquired twice");
  }
  const bool want_params = pass != trainer::Pass::kGradsOnly;
  const bool want_grads = pass != trainer::Pass::kForward;
  kept_.erase(std::remove(kept_.begin(), kept_.end(), i), kept_.end());
  if (want_params && s.params == nullptr) {
    while (!kept_.empty() && live_ + s.numel > options_.max_live) Free(kept_.front());
    StartGather(i);
  }
  if (want_params) {
    Prefetch(TracePosition(i, pass == trainer::Pass::kBackward));
    if (s.gather != 0) {
      const dist::CollectiveQueue::Ticket t = s.gather;
      s.gather = 0;
      RETURN_IF_ERROR(queue_->Wait(t));
    }
  }
  if (want_grads) s.grads.reset(new float[s.numel]());  // backward accumulates
  s.in_use = true;
  return Views(i, want_params, want_grads);
}

coord::Status Zero3Params::Release(trainer::Module m, trainer::Pass pass) {
  const int i = Index(m);
  ModuleState& s = modules_[static_cast<size_t>(i)];
  s.in_use = false;
  if (pass != trainer::Pass::kForward) {
    // The task owns the gradient buffer and frees it when the reduce-scatter is done.
    // At most one reduce-scatter in flight: the previous module's had this module's
    // whole backward to finish, and the gradients held stay at two modules' worth.
    RETURN_IF_ERROR(queue_->Wait(last_reduce_));
    std::shared_ptr<float[]> grads(s.grads.release());
    last_reduce_ = queue_->Submit([this, i, grads] { return ReduceGrads(i, grads.get()); });
    if (!options_.overlap_comm) RETURN_IF_ERROR(queue_->Wait(last_reduce_));
  }
  if (pass == trainer::Pass::kGradsOnly || s.params == nullptr) return coord::Status::Ok();
  if (ReuseDistance(i, pass == trainer::Pass::kBackward) <= options_.max_reuse_distance &&
      live_ <= options_.max_live) {
    kept_.push_back(i);
  } else {
    Free(i);
  }
  return coord::Status::Ok();
}

void Zero3Params::Init(const trainer::GptConfig& config, uint64_t seed) {
  for (size_t i = 0; i < modules_.size(); ++i) Free(static_cast<int>(i));
  trainer::InitMegatronParamsRange(config, layout_, seed, begin_, end_, params_.data());
  size_t at = 0;  // the replica holds the persistent tensors in flat order
  for (const trainer::ParamTensorInfo& t : layout_.tensors()) {
    if (t.numel >= options_.persistence_threshold) continue;
    trainer::InitMegatronParamsRange(config, layout_, seed, t.offset, t.offset + t.numel,
                                     replica_.data() + at);
    at += t.numel;
  }
}

coord::Status Zero3Params::ZeroGrad() {
  RETURN_IF_ERROR(Drain());
  std::fill(grads_.begin(), grads_.end(), 0.0f);
  return coord::Status::Ok();
}

coord::Status Zero3Params::ParamsUpdated() {
  RETURN_IF_ERROR(Drain());
  for (size_t i = 0; i < modules_.size(); ++i) Free(static_cast<int>(i));
  if (replica_.empty()) return coord::Status::Ok();
  // This rank's persistent elements, in flat order, are one block of the replica.
  size_t at = 0;
  for (int r = 0; r < dp_->rank(); ++r) at += replica_counts_[static_cast<size_t>(r)];
  for (const trainer::ParamTensorInfo& t : layout_.tensors()) {
    if (t.numel >= options_.persistence_threshold) continue;
    const size_t b = std::max(t.offset, begin_), e = std::min(t.offset + t.numel, end_);
    if (b >= e) continue;
    std::memcpy(replica_.data() + at, params_.data() + (b - begin_), (e - b) * sizeof(float));
    at += e - b;
  }
  return Collective(
      [this] { return dp_->AllGather(replica_.data(), replica_counts_, dist::DataType::kFloat32); });
}

coord::Status Zero3Params::Load(const float* params) {
  RETURN_IF_ERROR(Drain());
  for (size_t i = 0; i < modules_.size(); ++i) Free(static_cast<int>(i));
  std::memcpy(params_.data(), params + begin_, (end_ - begin_) * sizeof(float));
  size_t at = 0;
  for (const trainer::ParamTensorInfo& t : layout_.tensors()) {
    if (t.numel >= options_.persistence_threshold) continue;
    std::memcpy(replica_.data() + at, params + t.offset, t.numel * sizeof(float));
    at += t.numel;
  }
  return coord::Status::Ok();
}

coord::Status Zero3Params::GatherAll(float* out) {
  RETURN_IF_ERROR(Drain());
  std::memcpy(out + begin_, params_.data(), (end_ - begin_) * sizeof(float));
  return Collective([this, out] { return dp_->AllGather(out, counts_, dist::DataType::kFloat32); });
}

}  // namespace gpt_rank::train
