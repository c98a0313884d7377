// Megatron's 1F1B and interleaved pipeline schedules (see pipeline_schedule.h). The
// control flow follows schedules.py step for step, so the order of every forward,
// backward and exchange is Megatron's.
#include "trainer/train/pipeline_schedule.h"

#include <algorithm>
#include <deque>
#include <memory>
#include <utility>

namespace gpt_rank::train {
namespace {

using Buffer = std::unique_ptr<std::vector<float>>;
constexpr int kActivations = 0, kGradients = 1;  // PeerOp channels

// One stage's side of the exchanges: buffers for what it receives (queued per chunk,
// in micro-batch order), the batches of sends and receives, and errors that say
// which stage waited for what.
class Exchanger {
 public:
  Exchanger(dist::Communicator& comm, const PipelineShape& shape, size_t floats)
      : comm_(comm),
        shape_(shape),
        floats_(floats),
        inputs_(static_cast<size_t>(shape.vpp)),
        output_grads_(static_cast<size_t>(shape.vpp)),
        inputs_received_(static_cast<size_t>(shape.vpp), 0),
        grads_received_(static_cast<size_t>(shape.vpp), 0) {}

  int next() const { return (shape_.stage + 1) % shape_.pp; }
  int prev() const { return (shape_.stage + shape_.pp - 1) % shape_.pp; }

  Buffer NewBuffer() {
    if (!free_.empty()) {
      Buffer b = std::move(free_.back());
      free_.pop_back();
      return b;
    }
    return std::make_unique<std::vector<float>>(floats_);
  }
  void Free(Buffer b) {
    if (b != nullptr) free_.push_back(std::move(b));
  }

  // One batch: send `fwd` (chunk fwd_chunk's output) to the next stage and `bwd` (an
  // input gradient) to the previous one, where not null; receive the input of the
  // next forward of chunk recv_fwd_chunk from the previous stage and the output
  // gradient of the next backward of chunk recv_bwd_chunk from the next, where >= 0.
  coord::Status Run(const float* fwd, const float* bwd, int recv_fwd_chunk, int recv_bwd_chunk) {
    std::vector<dist::PeerOp> ops;
    Buffer in, grad;
    auto add = [&](dist::PeerOp::Kind kind, const float* data, int peer, int channel) {
      ops.push_back(dist::PeerOp{kind, const_cast<float*>(data), floats_,
                                 dist::DataType::kFloat32, peer, channel});
    };
    if (fwd != nullptr) add(dist::PeerOp::kSend, fwd, next(), kActivations);
    if (bwd != nullptr) add(dist::PeerOp::kSend, bwd, prev(), kGradients);
    if (recv_fwd_chunk >= 0) {
      in = NewBuffer();
      add(dist::PeerOp::kRecv, in->data(), prev(), kActivations);
    }
    if (recv_bwd_chunk >= 0) {
      grad = NewBuffer();
      add(dist::PeerOp::kRecv, grad->data(), next(), kGradients);
    }
    if (ops.empty()) return coord::Status::Ok();
    coord::Status s = comm_.SendRecv(ops);
    if (!s.ok()) return s.WithContext(Describe(recv_fwd_chunk, recv_bwd_chunk));
    if (recv_fwd_chunk >= 0) {
      ++inputs_received_[static_cast<size_t>(recv_fwd_chunk)];
      inputs_[static_cast<size_t>(recv_fwd_chunk)].push_back(std::move(in));
    }
    if (recv_bwd_chunk >= 0) {
      ++grads_received_[static_cast<size_t>(recv_bwd_chunk)];
      output_grads_[static_cast<size_t>(recv_bwd_chunk)].push_back(std::move(grad));
    }
    return coord::Status::Ok();
  }

  // The oldest received input of `chunk` (null when none is queued: the first stage).
  Buffer PopInput(int chunk) { return Pop(&inputs_[static_cast<size_t>(chunk)]); }
  Buffer PopOutputGrad(int chunk) { return Pop(&output_grads_[static_cast<size_t>(chunk)]); }

 private:
  static Buffer Pop(std::deque<Buffer>* q) {
    if (q->empty()) return nullptr;
    Buffer b = std::move(q->front());
    q->pop_front();
    return b;
  }

  // "waiting for the activation of micro-batch 3 (chunk 0) from stage 1": what a hang
  // or a dead peer held up (the trainer adds which stage this is).
  std::string Describe(int recv_fwd_chunk, int recv_bwd_chunk) const {
    std::string out;
    auto waiting = [&](const char* what, int chunk, int64_t m, int from) {
      out += std::string(out.empty() ? "" : ", ") + "waiting for the " + what + " of micro-batch " +
             std::to_string(m) +
             (shape_.vpp > 1 ? " (chunk " + std::to_string(chunk) + ")" : "") + " from stage " +
             std::to_string(from);
    };
    if (recv_fwd_chunk >= 0) {
      waiting("activation", recv_fwd_chunk, inputs_received_[static_cast<size_t>(recv_fwd_chunk)],
              prev());
    }
    if (recv_bwd_chunk >= 0) {
      waiting("gradient", recv_bwd_chunk, grads_received_[static_cast<size_t>(recv_bwd_chunk)],
              next());
    }
    if (recv_fwd_chunk < 0 && recv_bwd_chunk < 0) out = "sending to its neighbours";
    return out;
  }

  dist::Communicator& comm_;
  PipelineShape shape_;
  size_t floats_;
  std::vector<std::deque<Buffer>> inputs_, output_grads_;  // per chunk
  std::vector<int64_t> inputs_received_, grads_received_;  // per chunk
  std::vector<Buffer> free_;
};

// ---------------------------------------------------------------------------
// 1F1B

coord::Status RunOneFOneB(PipelineStage& stage, Exchanger& x, const PipelineShape& shape,
                          bool forward_only) {
  const bool first = shape.stage == 0, last = shape.stage == shape.pp - 1;
  const int64_t m = shape.num_micro;
  const int64_t warmup = WarmupMicroBatches(shape, forward_only);
  const int64_t remaining = m - warmup;
  const int recv_fwd = first ? -1 : 0, recv_bwd = last ? -1 : 0;
  Buffer out = x.NewBuffer(), in_grad = x.NewBuffer();
  float* out_ptr = last ? nullptr : out->data();
  float* in_grad_ptr = first ? nullptr : in_grad->data();
  int64_t next_forward = 0, next_backward = 0;
  auto forward = [&]() -> coord::Status {
    Buffer in = x.PopInput(0);
    RETURN_IF_ERROR(stage.Forward(0, next_forward++, in != nullptr ? in->data() : nullptr,
                                  out_ptr));
    x.Free(std::move(in));
    return coord::Status::Ok();
  };
  auto backward = [&]() -> coord::Status {
    Buffer grad = x.PopOutputGrad(0);
    RETURN_IF_ERROR(stage.Backward(0, next_backward++, grad != nullptr ? grad->data() : nullptr,
                                   in_grad_ptr));
    x.Free(std::move(grad));
    return coord::Status::Ok();
  };
  for (int64_t i = 0; i < warmup; ++i) {
    RETURN_IF_ERROR(x.Run(nullptr, nullptr, recv_fwd, -1));  // recv_forward
    RETURN_IF_ERROR(forward());
    RETURN_IF_ERROR(x.Run(out_ptr, nullptr, -1, -1));  // send_forward
  }
  if (remaining > 0) RETURN_IF_ERROR(x.Run(nullptr, nullptr, recv_fwd, -1));
  for (int64_t i = 0; i < remaining; ++i) {
    const bool last_iteration = i == remaining - 1;
    RETURN_IF_ERROR(forward());
    if (forward_only) {
      RETURN_IF_ERROR(x.Run(out_ptr, nullptr, last_iteration ? -1 : recv_fwd, -1));
      continue;
    }
    RETURN_IF_ERROR(x.Run(out_ptr, nullptr, -1, recv_bwd));  // send_forward_recv_backward
    RETURN_IF_ERROR(backward());
    // send_backward (last) or send_backward_recv_forward
    RETURN_IF_ERROR(x.Run(nullptr, in_grad_ptr, last_iteration ? -1 : recv_fwd, -1));
  }
  if (forward_only) return coord::Status::Ok();
  for (int64_t i = 0; i < warmup; ++i) {  // cooldown
    RETURN_IF_ERROR(x.Run(nullptr, nullptr, -1, recv_bwd));  // recv_backward
    RETURN_IF_ERROR(backward());
    RETURN_IF_ERROR(x.Run(nullptr, in_grad_ptr, -1, -1));  // send_backward
  }
  return coord::Status::Ok();
}

// ---------------------------------------------------------------------------
// Interleaved

class Interleaved {
 public:
  Interleaved(PipelineStage& stage, Exchanger& x, const PipelineShape& shape)
      : stage_(stage), x_(x), s_(shape) {}

  // Megatron's get_model_chunk_id: forward step k runs chunk (k mod pp vpp) / pp; the
  // backwards visit the chunks in reverse.
  // k may be negative (the first and last stage look pp - 1 steps back): the modulo
  // is Python's, non-negative.
  int Chunk(int64_t k, bool forward) const {
    const int64_t group = s_.pp * s_.vpp;
    const int c = static_cast<int>((((k % group) + group) % group) / s_.pp);
    return forward ? c : s_.vpp - 1 - c;
  }
  // The micro-batch of step k: groups of pp micro-batches go through all chunks.
  int64_t MicroBatch(int64_t k) const {
    const int64_t group = k / (s_.pp * s_.vpp);
    return group * s_.pp + k % s_.pp;
  }
  bool FirstVirtual(int chunk) const { return s_.stage == 0 && chunk == 0; }
  bool LastVirtual(int chunk) const { return s_.stage == s_.pp - 1 && chunk == s_.vpp - 1; }

  coord::Status Run(bool forward_only) {
    const int64_t total = s_.num_micro * s_.vpp;
    const int64_t warmup = WarmupMicroBatches(s_, forward_only);
    const int64_t remaining = total - warmup;
    const bool first_stage = s_.stage == 0, last_stage = s_.stage == s_.pp - 1;
    // input_tensors[0].append(recv_forward()): the first chunk's first input.
    RETURN_IF_ERROR(x_.Run(nullptr, nullptr, first_stage ? -1 : 0, -1));
    for (int64_t k = 0; k < warmup; ++k) {
      const int chunk = Chunk(k, true);
      RETURN_IF_ERROR(Forward(k));
      const int next_chunk = Chunk(k + 1, true);
      bool recv_prev = !(first_stage && next_chunk == 0) && k != total - 1;
      const float* send = LastVirtual(chunk) ? nullptr : out_->data();
      if (k == warmup - 1 && !forward_only && remaining > 0) {
        // send_forward_backward_recv_forward_backward: the first gradient too
        RETURN_IF_ERROR(x_.Run(send, nullptr, recv_prev ? next_chunk : -1,
                               last_stage ? -1 : s_.vpp - 1));
      } else {
        RETURN_IF_ERROR(x_.Run(send, nullptr, recv_prev ? next_chunk : -1, -1));
      }
    }
    for (int64_t k = 0; k < remaining; ++k) {
      const int64_t forward_k = k + warmup, backward_k = k;
      RETURN_IF_ERROR(Forward(forward_k));
      RETURN_IF_ERROR(Backward(backward_k));
      const int fwd_chunk = Chunk(forward_k, true), bwd_chunk = Chunk(backward_k, false);
      const float* send_fwd = LastVirtual(fwd_chunk) ? nullptr : out_->data();
      const float* send_bwd = FirstVirtual(bwd_chunk) ? nullptr : in_grad_->data();
      bool recv_prev = true;
      int next_fwd_chunk;
      if (first_stage) {
        // Stage 0 receives from the last stage, which is pp - 1 forward steps behind.
        next_fwd_chunk = Chunk(forward_k - (s_.pp - 1), true);
        if (next_fwd_chunk == s_.vpp - 1) recv_prev = false;
        ++next_fwd_chunk;
      } else {
        next_fwd_chunk = Chunk(forward_k + 1, true);
      }
      bool recv_next = true;
      int next_bwd_chunk;
      if (last_stage) {
        next_bwd_chunk = Chunk(backward_k - (s_.pp - 1), false);
        if (next_bwd_chunk == 0) recv_next = false;
        --next_bwd_chunk;
      } else {
        next_bwd_chunk = Chunk(backward_k + 1, false);
      }
      if (k == remaining - 1) recv_prev = false;
      RETURN_IF_ERROR(x_.Run(send_fwd, send_bwd, recv_prev ? next_fwd_chunk : -1,
                             recv_next ? next_bwd_chunk : -1));
    }
    if (forward_only) return coord::Status::Ok();
    if (remaining == 0) {  // all warmup: the first gradient has not come yet
      RETURN_IF_ERROR(x_.Run(nullptr, nullptr, -1, last_stage ? -1 : s_.vpp - 1));
    }
    for (int64_t k = remaining; k < total; ++k) {
      RETURN_IF_ERROR(Backward(k));
      const int chunk = Chunk(k, false), next_chunk = Chunk(k + 1, false);
      const bool recv_next = !(last_stage && next_chunk == s_.vpp - 1) && k != total - 1;
      RETURN_IF_ERROR(x_.Run(nullptr, FirstVirtual(chunk) ? nullptr : in_grad_->data(), -1,
                             recv_next ? next_chunk : -1));
    }
    return coord::Status::Ok();
  }

 private:
  coord::Status Forward(int64_t k) {
    const int chunk = Chunk(k, true);
    Buffer in = x_.PopInput(chunk);
    if (in == nullptr && !FirstVirtual(chunk)) {
      return coord::Internal("pipeline stage " + std::to_string(s_.stage) + ": no input for " +
                             "chunk " + std::to_string(chunk) + " at forward step " +
                             std::to_string(k));
    }
    RETURN_IF_ERROR(stage_.Forward(chunk, MicroBatch(k), in != nullptr ? in->data() : nullptr,
                                   LastVirtual(chunk) ? nullptr : out_->data()));
    x_.Free(std::move(in));
    return coord::Status::Ok();
  }
  coord::Status Backward(int64_t k) {
    const int chunk = Chunk(k, false);
    Buffer grad = x_.PopOutputGrad(chunk);
    if (grad == nullptr && !LastVirtual(chunk)) {
      return coord::Internal("pipeline stage " + std::to_string(s_.stage) + ": no gradient for " +
                             "chunk " + std::to_string(chunk) + " at backward step " +
                             std::to_string(k));
    }
    RETURN_IF_ERROR(stage_.Backward(chunk, MicroBatch(k),
                                    grad != nullptr ? grad->data() : nullptr,
                                    FirstVirtual(chunk) ? nullptr : in_grad_->data()));
    x_.Free(std::move(grad));
    return coord::Status::Ok();
  }

  PipelineStage& stage_;
  Exchanger& x_;
  PipelineShape s_;
  Buffer out_ = x_.NewBuffer(), in_grad_ = x_.NewBuffer();
};

}  // namespace

int64_t WarmupMicroBatches(const PipelineShape& s, bool forward_only) {
  if (s.vpp <= 1) {
    return forward_only ? s.num_micro : std::min<int64_t>(s.pp - s.stage - 1, s.num_micro);
  }
  const int64_t total = s.num_micro * s.vpp;
  if (forward_only || s.num_micro == s.pp) return total;
  return std::min<int64_t>((s.pp - s.stage - 1) * 2 + static_cast<int64_t>(s.vpp - 1) * s.pp,
                           total);
}

coord::Status RunPipelineSchedule(PipelineStage& stage, dist::Communicator& pipeline,
                                  const PipelineShape& shape, bool forward_only) {
  if (pipeline.size() != shape.pp || pipeline.rank() != shape.stage) {
    return coord::Internal("pipeline schedule: communicator of " + std::to_string(pipeline.size()) +
                           " ranks (this is " + std::to_string(pipeline.rank()) + ") for " +
                           std::to_string(shape.pp) + " stages (this is " +
                           std::to_string(shape.stage) + ")");
  }
  if (shape.vpp > 1 && shape.num_micro % shape.pp != 0) {
    return coord::InvalidArgument("interleaved pipeline schedule: " +
                                  std::to_string(shape.num_micro) +
                                  " micro-batches is not a multiple of the " +
                                  std::to_string(shape.pp) + " stages");
  }
  Exchanger x(pipeline, shape, stage.activation_floats());
  if (shape.pp == 1) {  // no pipelining: forward and backward per micro-batch
    for (int64_t m = 0; m < shape.num_micro; ++m) {
      RETURN_IF_ERROR(stage.Forward(0, m, nullptr, nullptr));
      if (!forward_only) RETURN_IF_ERROR(stage.Backward(0, m, nullptr, nullptr));
    }
    return coord::Status::Ok();
  }
  if (shape.vpp <= 1) return RunOneFOneB(stage, x, shape, forward_only);
  Interleaved schedule(stage, x, shape);
  return schedule.Run(forward_only);
}

}  // namespace gpt_rank::train
