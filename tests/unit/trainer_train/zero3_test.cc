// Zero3Params' bookkeeping (trainer/train/zero3.h) on 3 in-process ranks (threads over
// a shared-memory communicator), a layout whose partitions cut through tensors:
// gathered modules equal the one-rank weights (persistent tensors from the replica),
// reduce-scattered gradients land summed in their owners' partitions, the replica
// follows an update, and the live window stays within max_live_parameters.
#include "trainer/train/zero3.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace gpt_rank::train {
namespace {

// Every collective: publish the buffer, wait for all, read the others' blocks, wait.
class SharedMemoryGroup {
 public:
  explicit SharedMemoryGroup(int n) : n_(n), ptrs_(static_cast<size_t>(n)) {}
  void Barrier() {
    std::unique_lock<std::mutex> lock(mu_);
    const int gen = generation_;
    if (++arrived_ == n_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return generation_ != gen; });
    }
  }
  int n_;
  std::vector<float*> ptrs_;
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0, generation_ = 0;
};

class SharedMemoryCommunicator final : public dist::Communicator {
 public:
  SharedMemoryCommunicator(SharedMemoryGroup* g, int rank) : g_(g), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return g_->n_; }
  const char* backend() const override { return "shm"; }
  std::chrono::milliseconds timeout() const override { return std::chrono::milliseconds(1000); }
  coord::Status AllReduceSum(void* data, size_t count, dist::DataType type) override {
    if (type != dist::DataType::kFloat32) {  // the norm's double
      Publish(data);
      double sum = 0;
      for (float* p : g_->ptrs_) sum += *reinterpret_cast<double*>(p);
      g_->Barrier();
      *static_cast<double*>(data) = sum;
      g_->Barrier();
      return coord::Status::Ok();
    }
    return ReduceScatterSum(data, std::vector<size_t>(static_cast<size_t>(size()), 0), type,
                            count);
  }
  coord::Status ReduceScatterSum(void* data, const std::vector<size_t>& counts,
                                 dist::DataType type) override {
    return ReduceScatterSum(data, counts, type, 0);
  }
  coord::Status AllGather(void* data, const std::vector<size_t>& counts,
                          dist::DataType /*type*/) override {
    Publish(data);
    float* mine = static_cast<float*>(data);
    size_t at = 0;
    for (int r = 0; r < size(); ++r) {
      const size_t n = counts[static_cast<size_t>(r)];
      if (r != rank_) std::copy(g_->ptrs_[r] + at, g_->ptrs_[r] + at + n, mine + at);
      at += n;
    }
    g_->Barrier();
    return coord::Status::Ok();
  }
  coord::Status Broadcast(void*, size_t, dist::DataType, int) override {
    return coord::Unimplemented("not used");
  }
  coord::Status Barrier() override {
    g_->Barrier();
    return coord::Status::Ok();
  }

 private:
  void Publish(void* data) {
    g_->ptrs_[static_cast<size_t>(rank_)] = static_cast<float*>(data);
    g_->Barrier();
  }
  // all_count > 0: an all-reduce of all_count floats.
  coord::Status ReduceScatterSum(void* data, const std::vector<size_t>& counts,
                                 dist::DataType /*type*/, size_t all_count) {
    Publish(data);
    size_t at = 0, n = all_count;
    if (all_count == 0) {
      for (int r = 0; r < rank_; ++r) at += counts[static_cast<size_t>(r)];
      n = counts[static_cast<size_t>(rank_)];
    }
    std::vector<float> sum(n, 0.0f);
    for (float* p : g_->ptrs_) {
      for (size_t i = 0; i < n; ++i) sum[i] += p[at + i];
    }
    g_->Barrier();
    std::copy(sum.begin(), sum.end(), static_cast<float*>(data) + at);
    g_->Barrier();
    return coord::Status::Ok();
  }
  coord::Status SendRecv(const std::vector<dist::PeerOp>&) override {
    return coord::Unimplemented("ZeRO-3 does not send or receive");
  }
  SharedMemoryGroup* g_;
  int rank_;
};

trainer::GptConfig SmallConfig() {
  trainer::GptConfig c;
  c.num_layers = 2;
  c.hidden_size = 16;
  c.num_attention_heads = 2;
  c.vocab_size = 100;
  c.seq_length = 8;
  c.max_position_embeddings = 8;
  c.make_vocab_size_divisible_by = 8;
  return c;
}

void RunRanks(int n, const std::function<void(dist::Communicator*)>& body) {
  SharedMemoryGroup group(n);
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) {
    threads.emplace_back([&, r] {
      SharedMemoryCommunicator comm(&group, r);
      body(&comm);
    });
  }
  for (auto& t : threads) t.join();
}

trainer::ModuleTensors Expected(const trainer::GptParams& v, trainer::Module m) {
  return trainer::WholeModuleTensors(v, m);
}

// false: every collective in line, nothing kept (max_live 0); true: prefetch one
// layer ahead and overlap_comm, so gathers and reduce-scatters run on the queue's
// thread while the "compute" (the test's writes) goes on: the same values must arrive.
class Zero3ParamsTest : public ::testing::TestWithParam<bool> {};

TEST_P(Zero3ParamsTest, GathersTheWholeWeightsReducesGradientsAndRefreshesTheReplica) {
  const bool overlapped = GetParam();
  const trainer::GptConfig config = SmallConfig();
  const trainer::GptParamLayout layout(config);
  std::vector<float> whole(layout.num_params());
  trainer::InitMegatronParams(config, layout, 1234, whole.data());
  const trainer::GptParams views = layout.Views(whole.data());
  Zero3Options o;
  o.persistence_threshold = 40;  // LayerNorms, small biases and the 3C qkv bias are kept whole
  o.reduce_bucket = 300;         // several buckets per layer
  o.max_live = 0;                // nothing kept beyond the module in use
  o.max_reuse_distance = 0;
  const trainer::GptParamLayout probe(config);
  const size_t layer = probe.layer_end(0) - probe.layer_begin(0);
  const size_t embedding = probe.tensors()[0].numel + probe.tensors()[1].numel;
  if (overlapped) {
    o.max_live = 1000000;
    o.prefetch_bucket = layer;  // the next module
    o.overlap_comm = true;
  }
  constexpr int kRanks = 3;
  std::vector<std::vector<float>> owned_grads(kRanks);
  std::vector<size_t> begins(kRanks);
  RunRanks(kRanks, [&](dist::Communicator* comm) {
    Zero3Params z(layout, comm, o);
    z.Init(config, 1234);
    EXPECT_GT(z.persistent_numel(), 0u);
    std::vector<trainer::Module> modules = {{trainer::ModuleKind::kEmbedding, -1}};
    for (int l = 0; l < config.num_layers; ++l) modules.push_back({trainer::ModuleKind::kLayer, l});
    modules.push_back({trainer::ModuleKind::kHead, -1});
    // Forward: every module's gathered weights are the one-rank weights.
    for (const trainer::Module& m : modules) {
      auto v = z.Acquire(m, trainer::Pass::kForward);
      ASSERT_TRUE(v.ok()) << v.status().message();
      const trainer::ModuleTensors want = Expected(views, m);
      if (m.kind == trainer::ModuleKind::kLayer) {
        const size_t n = layout.layer_end(m.layer) - layout.layer_begin(m.layer);
        for (size_t i = 0; i < n; ++i) ASSERT_EQ(v->params.layer.ln1w[i], want.layer.ln1w[i]) << i;
      } else {
        ASSERT_EQ(v->params.wte[5], want.wte[5]);
        if (want.wpe != nullptr) {
          EXPECT_EQ(v->params.wpe[7], want.wpe[7]);
        }
        if (want.lnfw != nullptr) {
          EXPECT_EQ(v->params.lnfb[3], want.lnfb[3]);
        }
      }
      ASSERT_TRUE(z.Release(m, trainer::Pass::kForward).ok());
    }
    // Backward, twice (two micro-batches): rank r adds (r + 1) * (1 + flat index / 1000)
    // to every gradient of each module, wte from the head and the embedding.
    ASSERT_TRUE(z.ZeroGrad().ok());
    for (int micro = 0; micro < 2; ++micro) {
      for (auto it = modules.rbegin(); it != modules.rend(); ++it) {
        const trainer::Pass pass = it->kind == trainer::ModuleKind::kEmbedding
                                       ? trainer::Pass::kGradsOnly
                                       : trainer::Pass::kBackward;
        auto v = z.Acquire(*it, pass);
        ASSERT_TRUE(v.ok());
        const float add = static_cast<float>(comm->rank() + 1);
        if (it->kind == trainer::ModuleKind::kLayer) {
          const size_t b = layout.layer_begin(it->layer), n = layout.layer_end(it->layer) - b;
          for (size_t i = 0; i < n; ++i) v->grads.layer.ln1w[i] += add * (1 + (b + i) / 1000.0f);
        } else {
          const size_t wte = layout.tensors()[0].numel;
          for (size_t i = 0; i < wte; ++i) v->grads.wte[i] += add * (1 + i / 1000.0f);
          if (v->grads.wpe != nullptr) {
            const size_t b = layout.tensors()[1].offset;
            for (size_t i = 0; i < layout.tensors()[1].numel; ++i)
              v->grads.wpe[i] += add * (1 + (b + i) / 1000.0f);
          }
          if (v->grads.lnfw != nullptr) {
            const size_t b = layout.tensors()[layout.tensors().size() - 2].offset;
            for (size_t i = 0; i < 2 * static_cast<size_t>(config.hidden_size); ++i)
              v->grads.lnfw[i] += add * (1 + (b + i) / 1000.0f);
          }
        }
        ASSERT_TRUE(z.Release(*it, pass).ok());
      }
    }
    ASSERT_TRUE(z.Drain().ok());  // overlap_comm: the last reduce-scatters land
    owned_grads[comm->rank()].assign(z.grads(), z.grads() + (z.end() - z.begin()));
    begins[comm->rank()] = z.begin();
    if (overlapped) {
      // The module in use and the next one (and the head, kept for backward) at once.
      EXPECT_GT(z.peak_live(), std::max(layer, embedding));
      EXPECT_LE(z.peak_live(), 3 * std::max(layer, embedding));
    } else {
      // Never more than the largest module gathered at once (max_live 0).
      EXPECT_EQ(z.peak_live(), std::max(layer, embedding));
    }
    // An update of the partition reaches every rank's gathered modules, persistent
    // tensors (the replica) included.
    for (size_t i = 0; i < z.end() - z.begin(); ++i) z.params()[i] += 1.0f;
    ASSERT_TRUE(z.ParamsUpdated().ok());
    auto v = z.Acquire({trainer::ModuleKind::kLayer, 1}, trainer::Pass::kForward);
    ASSERT_TRUE(v.ok());
    const trainer::LayerParams want = views.layers[1];
    EXPECT_EQ(v->params.layer.ln2w[0], want.ln2w[0] + 1.0f);    // persistent
    EXPECT_EQ(v->params.layer.qkvb[1], want.qkvb[1] + 1.0f);    // persistent
    EXPECT_EQ(v->params.layer.fcw[100], want.fcw[100] + 1.0f);  // gathered
    ASSERT_TRUE(z.Release({trainer::ModuleKind::kLayer, 1}, trainer::Pass::kForward).ok());
  });
  // Each owner holds the sum over ranks (1 + 2 + 3 = 6) of two micro-batches; wte's
  // elements got the head's and the embedding's contributions.
  const size_t wte = layout.tensors()[0].numel;
  for (int r = 0; r < kRanks; ++r) {
    for (size_t i = 0; i < owned_grads[r].size(); ++i) {
      const size_t x = begins[r] + i;
      const float unit = x < wte ? 2 * (1 + x / 1000.0f) : 1 + x / 1000.0f;
      ASSERT_NEAR(owned_grads[r][i], 2 * 6 * unit, 1e-4 * unit) << "element " << x;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(InLineAndOverlapped, Zero3ParamsTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? "PrefetchAndOverlapComm" : "InLine";
                         });

}  // namespace
}  // namespace gpt_rank::train
