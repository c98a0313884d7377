// gpt-rank's CPU model of the Llama / Qwen2 family against a plain PyTorch
// implementation (tests/reference/llama_reference.py, Debian's python3-torch, float64,
// one thread; gpt-rank runs with its OpenMP threads, whose results do not depend on the
// count). A Qwen2-shaped tiny model (GQA in 2 groups, q/k/v biases, tied embedding,
// RoPE theta 1e6, written as 3 safetensors shards + index) and a Llama-shaped one (no
// GQA, no biases, untied lm_head) with random weights written by the reference in HF's
// layout, imported through import-hf's path (ImportHfLlama): the loss at iteration 0
// within 1e-5 relative, every gradient within 1e-4 (norm-wise; with and without
// checkpoint_activations), and the loss of each of 20 AdamW iterations (warmup + cosine
// + clipping + 2-way accumulation) within 1e-4; and batch 0 as a packed SFT batch
// (per-row segments with positions restarting at 0, loss weights on a subset of the
// targets): loss within 1e-5 and every gradient within 1e-4. Skips only without torch.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "common/fs.h"
#include "tests/support/files.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/trainer_model/test_util.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/checkpoint/hf_llama.h"
#include "trainer/model/gpt.h"
#include "trainer/optim/adamw.h"
#include "trainer/optim/lr_schedule.h"

namespace trainer {
namespace {

constexpr char kPython[] = "/usr/bin/python3";
constexpr int kB = 4, kT = 32, kNumBatches = 4, kAccum = 2, kIters = 20;
// Token ids stay below 450 of the 500 embedding rows: rows beyond the tokenizer's size
// (Qwen2.5's 152064 for 151665 tokens) are in the softmax but never a target.
constexpr int kTokens = 450;

std::string Script() {
  return std::string(COORD_SOURCE_DIR) + "/tests/reference/llama_reference.py";
}

// Targets follow a learnable rule (next = 7*cur + 3 mod kTokens, 10% noise).
std::vector<std::vector<int>> MakeBatches() {
  std::mt19937 gen(2024);
  std::vector<std::vector<int>> batches;  // each: inputs (B*T) then targets (B*T)
  for (int n = 0; n < kNumBatches; ++n) {
    std::vector<int> io(2 * kB * kT);
    for (int b = 0; b < kB; ++b) {
      int tok = static_cast<int>(gen() % kTokens);
      for (int t = 0; t <= kT; ++t) {
        if (t < kT) io[b * kT + t] = tok;
        if (t > 0) io[kB * kT + b * kT + t - 1] = tok;
        tok = gen() % 10 == 0 ? static_cast<int>(gen() % kTokens) : (7 * tok + 3) % kTokens;
      }
    }
    batches.push_back(io);
  }
  return batches;
}

// Batch 0 as packed supervised fine-tuning rows: row b holds segments of 9 + b, 13 and
// the rest of the T positions (positions restarting at 0 in each); targets at t % 4 != 0
// are trained, except in row 3's last segment (padding), with weights 1 / (trained count).
struct Packing {
  std::vector<int> positions, segments;
  std::vector<float> weights;
};
Packing MakePacking() {
  Packing p;
  int trained = 0;
  for (int b = 0; b < kB; ++b) {
    const int ends[3] = {9 + b, 22 + b, kT};
    int seg = 0, start = 0;
    for (int t = 0; t < kT; ++t) {
      if (t == ends[seg]) start = ends[seg++];
      p.positions.push_back(t - start);
      p.segments.push_back(seg);
      const bool w = t % 4 != 0 && !(b == 3 && seg == 2);
      p.weights.push_back(w ? 1.0f : 0.0f);
      trained += w;
    }
  }
  for (float& w : p.weights) w /= static_cast<float>(trained);
  return p;
}

struct Reference {
  std::string weights;  // the HF directory
  GptConfig config;
  nlohmann::json ref;
  std::string error;  // why setting up failed
};

class LlamaReferenceTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    if (access(kPython, X_OK) != 0 ||
        coord::testing::RunCommand({kPython, "-c", "import torch"}).exit_code != 0) {
      skip_reason_ = std::string(kPython) + " with torch (Debian python3-torch) not available";
      return;
    }
    tmp_ = std::make_unique<coord::testing::TempDir>();
    batches_ = MakeBatches();
    std::ofstream bf(tmp_->File("batches.bin"), std::ios::binary);
    const int header[4] = {0x42545047, kNumBatches, kB, kT};
    bf.write(reinterpret_cast<const char*>(header), sizeof(header));
    for (const auto& b : batches_) bf.write(reinterpret_cast<const char*>(b.data()), b.size() * 4);
    bf.close();
    const nlohmann::json train = {{"lr", 3e-3},
                                  {"min_lr", 3e-4},
                                  {"lr_decay_style", "cosine"},
                                  {"train_iters", kIters},
                                  {"lr_decay_iters", kIters},
                                  {"lr_warmup_iters", 4},
                                  {"micro_batch_size", kB},
                                  {"accum", kAccum},
                                  {"beta1", 0.9},
                                  {"beta2", 0.95},
                                  {"eps", 1e-8},
                                  {"weight_decay", 0.1},
                                  {"clip_grad", 0.5}};
    std::ofstream(tmp_->File("train.json")) << train.dump();
    packing_ = MakePacking();
    const nlohmann::json packed = {{"positions", packing_.positions},
                                   {"segments", packing_.segments},
                                   {"weights", packing_.weights}};
    std::ofstream(tmp_->File("packed.json")) << packed.dump();
  }
  static void TearDownTestSuite() {
    if (tmp_ && std::getenv("KEEP_REFERENCE_DIR") != nullptr) tmp_->Keep();
    tmp_.reset();
    refs_.clear();
  }

  // The reference of this parameter's architecture, computed once.
  const Reference& Ref() {
    const std::string arch = GetParam();
    auto it = refs_.find(arch);
    if (it != refs_.end()) return it->second;
    Reference& r = refs_[arch];
    const std::string dir = tmp_->File(arch);
    r.weights = dir + "/weights";
    auto init = coord::testing::RunCommand({kPython, Script(), "init", "--out", r.weights, "--arch",
                                            arch, "--shards", arch == "qwen2" ? "3" : "1"});
    if (init.exit_code != 0) return r.error = "init: " + init.out + init.err, r;
    auto config = ReadHfLlamaConfig(r.weights);
    if (!config.ok()) return r.error = config.status().ToString(), r;
    r.config = *config;
    r.config.seq_length = kT;
    auto run = coord::testing::RunCommand(
        {kPython, Script(), "run", "--weights", r.weights, "--batches", tmp_->File("batches.bin"),
         "--out", dir, "--train", tmp_->File("train.json"), "--packed", tmp_->File("packed.json")},
        {}, /*timeout_ms=*/600000);
    if (run.exit_code != 0) return r.error = "run: " + run.out + run.err, r;
    auto text = coord::ReadFile(dir + "/ref.json");
    if (!text.ok()) return r.error = text.status().ToString(), r;
    r.ref = nlohmann::json::parse(*text);
    return r;
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    ASSERT_TRUE(Ref().error.empty()) << Ref().error;
  }

  std::unique_ptr<GptModel> LoadModel(bool checkpoint) {
    GptConfig c = Ref().config;
    c.checkpoint_activations = checkpoint;
    auto model = GptModel::Create(c, kB, kT);
    EXPECT_TRUE(model.ok()) << model.status().ToString();
    coord::Status s = ImportHfLlama(Ref().weights, c, (*model)->param_data());
    EXPECT_TRUE(s.ok()) << s.ToString();
    return std::move(*model);
  }
  float ForwardBatch(GptModel* model, int n) {
    const std::vector<int>& b = batches_[n % kNumBatches];
    auto loss = model->Forward(b.data(), b.data() + kB * kT, kB, kT, StepOptions{});
    EXPECT_TRUE(loss.ok()) << loss.status().ToString();
    return loss.ok() ? *loss : NAN;
  }

  // Every gradient of the model against a reference file in HF names (norm-wise
  // relative error per tensor < 1e-4); returns the worst.
  double CompareGrads(const GptModel& model, const std::string& ours_dir, const std::string& ref) {
    EXPECT_TRUE(ExportHfLlama(ours_dir, model.config(), model.grad_data()).ok());
    auto a = HfCheckpoint::Open(ours_dir);
    auto b = SafetensorsFile::Read(ref);
    EXPECT_TRUE(a.ok() && b.ok());
    if (!a.ok() || !b.ok()) return INFINITY;
    EXPECT_EQ(a->Names().size(), b->tensors().size());
    double worst = 0.0;
    for (const auto& [name, info] : b->tensors()) {
      EXPECT_TRUE(a->Has(name)) << name;
      size_t n = 1;
      for (int64_t d : info.shape) n *= d;
      std::vector<float> ga(n), gb(n);
      EXPECT_TRUE(a->ReadF32(name, info.shape, ga.data()).ok());
      EXPECT_TRUE(b->ReadF32(name, info.shape, gb.data()).ok());
      const double err = testing::RelErr(ga, gb);
      worst = std::max(worst, err);
      EXPECT_LT(err, 1e-4) << name;
    }
    return worst;
  }

  static inline Packing packing_;
  static inline std::unique_ptr<coord::testing::TempDir> tmp_;
  static inline std::string skip_reason_;
  static inline std::vector<std::vector<int>> batches_;
  static inline std::map<std::string, Reference> refs_;
};

TEST_P(LlamaReferenceTest, ConfigMapsToTheFamily) {
  const GptConfig& c = Ref().config;
  EXPECT_TRUE(c.rms_norm() && c.rope() && c.swiglu);
  EXPECT_FALSE(c.add_bias_linear);
  if (GetParam() == "qwen2") {
    EXPECT_TRUE(c.group_query_attention);
    EXPECT_EQ(c.num_query_groups, 2);
    EXPECT_TRUE(c.add_qkv_bias);
    EXPECT_TRUE(c.tied_output());
    EXPECT_EQ(c.rotary_base, 1e6f);
    EXPECT_EQ(c.ffn_size(), 176);
  } else {
    EXPECT_FALSE(c.group_query_attention);
    EXPECT_FALSE(c.qkv_bias());
    EXPECT_FALSE(c.tied_output());
    EXPECT_EQ(c.ffn_size(), 128);
  }
}

TEST_P(LlamaReferenceTest, LossAndEveryGradientMatchPyTorch) {
  for (bool checkpoint : {false, true}) {
    SCOPED_TRACE(checkpoint ? "checkpoint_activations" : "plain");
    auto model = LoadModel(checkpoint);
    const double loss = ForwardBatch(model.get(), 0);
    const double ref_loss = Ref().ref["loss0"].get<double>();
    EXPECT_LT(std::abs(loss - ref_loss) / ref_loss, 1e-5) << loss << " vs " << ref_loss;
    ASSERT_TRUE(model->Backward(1.0f).ok());
    // Our gradients in HF names and layouts, through the same exporter as the weights.
    const std::string ours = tmp_->File(GetParam() + (checkpoint ? "/grads_ckpt" : "/grads"));
    ASSERT_TRUE(ExportHfLlama(ours, model->config(), model->grad_data()).ok());
    auto a = HfCheckpoint::Open(ours);
    auto b = SafetensorsFile::Read(tmp_->File(GetParam() + "/ref_grads.safetensors"));
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a->Names().size(), b->tensors().size());
    double worst = 0.0;
    for (const auto& [name, info] : b->tensors()) {
      ASSERT_TRUE(a->Has(name)) << name;
      size_t n = 1;
      for (int64_t d : info.shape) n *= d;
      std::vector<float> ga(n), gb(n);
      ASSERT_TRUE(a->ReadF32(name, info.shape, ga.data()).ok());
      ASSERT_TRUE(b->ReadF32(name, info.shape, gb.data()).ok());
      const double err = testing::RelErr(ga, gb);
      worst = std::max(worst, err);
      EXPECT_LT(err, 1e-4) << name;
    }
    // Padded vocabulary rows (500..511) get exactly zero gradient.
    const GptConfig& c = model->config();
    const float* head =
        model->grads().output != nullptr ? model->grads().output : model->grads().wte;
    for (size_t i = static_cast<size_t>(c.vocab_size) * c.hidden_size;
         i < static_cast<size_t>(c.padded_vocab_size()) * c.hidden_size; ++i) {
      ASSERT_EQ(model->grads().wte[i], 0.0f);
      ASSERT_EQ(head[i], 0.0f);
    }
    std::printf("[ figures ] %s ckpt=%d loss %.9f ref %.9f rel %.2e; worst grad rel err %.2e\n",
                GetParam().c_str(), checkpoint, loss, ref_loss,
                std::abs(loss - ref_loss) / ref_loss, worst);
  }
}

TEST_P(LlamaReferenceTest, TwentyAdamWItersWithWarmupCosineClippingMatchPyTorch) {
  auto model = LoadModel(false);
  LrScheduleConfig lr;
  lr.lr = 3e-3;
  lr.min_lr = 3e-4;
  lr.decay_style = LrDecayStyle::kCosine;
  lr.train_iters = kIters;
  lr.lr_decay_iters = kIters;
  lr.lr_warmup_iters = 4;
  lr.global_batch_size = kB * kAccum;
  auto schedule = LrSchedule::Create(lr);
  ASSERT_TRUE(schedule.ok());
  AdamW adam(model->layout(), AdamWConfig{0.9f, 0.95f, 1e-8f, 0.1f});
  const nlohmann::json& ref = Ref().ref;
  ASSERT_EQ(ref["train_losses"].size(), static_cast<size_t>(kIters));
  double worst = 0.0;
  int clipped = 0;
  for (int it = 1; it <= kIters; ++it) {
    const double rate = schedule->LrForIteration(it);
    EXPECT_NEAR(rate, ref["lrs"][it - 1].get<double>(), 1e-15) << "iteration " << it;
    model->ZeroGrad();
    double loss = 0.0;
    for (int m = 0; m < kAccum; ++m) {
      loss += ForwardBatch(model.get(), (it - 1) * kAccum + m) / static_cast<double>(kAccum);
      ASSERT_TRUE(model->Backward(1.0f / kAccum).ok());
    }
    const double norm = ClipGradNorm(model->grad_data(), model->num_params(), 0.5);
    clipped += norm > 0.5;
    adam.Step(model->param_data(), model->grad_data(), static_cast<float>(rate));
    const double ref_loss = ref["train_losses"][it - 1].get<double>();
    const double err = std::abs(loss - ref_loss) / ref_loss;
    worst = std::max(worst, err);
    EXPECT_LT(err, 1e-4) << "iteration " << it << ": " << loss << " vs " << ref_loss;
    EXPECT_LT(std::abs(norm - ref["grad_norms"][it - 1].get<double>()) / norm, 1e-4) << it;
  }
  EXPECT_GT(clipped, 0) << "the test should exercise clipping";
  EXPECT_LT(ref["train_losses"][kIters - 1].get<double>(), ref["train_losses"][0].get<double>())
      << "it trains";
  std::printf("[ figures ] %s worst train-loss rel err over %d iters: %.2e (%d clipped)\n",
              GetParam().c_str(), kIters, worst, clipped);
}

TEST_P(LlamaReferenceTest, PackedSftBatchMatchesPyTorch) {
  for (bool checkpoint : {false, true}) {
    SCOPED_TRACE(checkpoint ? "checkpoint_activations" : "plain");
    auto model = LoadModel(checkpoint);
    StepOptions o;
    o.position_ids = packing_.positions.data();
    o.segment_ids = packing_.segments.data();
    o.loss_weights = packing_.weights.data();
    const std::vector<int>& b = batches_[0];
    auto loss = model->Forward(b.data(), b.data() + kB * kT, kB, kT, o);
    ASSERT_TRUE(loss.ok()) << loss.status().ToString();
    const double ref_loss = Ref().ref["packed_loss"].get<double>();
    EXPECT_LT(std::abs(*loss - ref_loss) / ref_loss, 1e-5) << *loss << " vs " << ref_loss;
    ASSERT_TRUE(model->Backward(1.0f).ok());
    const double worst = CompareGrads(
        *model, tmp_->File(GetParam() + (checkpoint ? "/packed_grads_ckpt" : "/packed_grads_ours")),
        tmp_->File(GetParam() + "/packed_grads.safetensors"));
    std::printf("[ figures ] %s packed ckpt=%d loss %.9f ref %.9f rel %.2e; worst grad rel err "
                "%.2e\n", GetParam().c_str(), checkpoint, *loss, ref_loss,
                std::abs(*loss - ref_loss) / ref_loss, worst);
  }
}

INSTANTIATE_TEST_SUITE_P(Family, LlamaReferenceTest, ::testing::Values("qwen2", "llama"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace trainer
