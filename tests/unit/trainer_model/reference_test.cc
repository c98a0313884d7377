// gpt-rank's CPU model against a plain PyTorch GPT-2 (tests/reference/gpt_reference.py,
// Debian's python3-torch, float64). Same initial weights (through the HF export),
// same batches: loss at iteration 0 within 1e-5 relative, every gradient within 1e-4
// (norm-wise), and the loss of each of 20 AdamW iterations (warmup + cosine decay +
// clipping + 2-way gradient accumulation) within 1e-4 - with and without
// checkpoint_activations. Skips (with the reason) only when /usr/bin/python3 lacks torch.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
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
#include "trainer/checkpoint/safetensors.h"
#include "trainer/model/gpt.h"
#include "trainer/optim/adamw.h"
#include "trainer/optim/lr_schedule.h"

namespace trainer {
namespace {

constexpr char kPython[] = "/usr/bin/python3";
constexpr int kB = 4, kT = 32, kNumBatches = 4, kAccum = 2, kIters = 20;

GptConfig TinyConfig(bool checkpoint) {
  GptConfig c;
  c.num_layers = 2;
  c.hidden_size = 64;
  c.num_attention_heads = 4;
  c.seq_length = kT;
  c.max_position_embeddings = kT;
  c.vocab_size = 500;  // padded to 512
  c.hidden_dropout = 0.0f;
  c.attention_dropout = 0.0f;
  c.checkpoint_activations = checkpoint;
  return c;
}

struct TrainConfig {
  LrScheduleConfig lr;
  AdamWConfig adam;
  double clip_grad = 0.5;
};

TrainConfig MakeTrainConfig() {
  TrainConfig t;
  t.lr.lr = 3e-3;
  t.lr.min_lr = 3e-4;
  t.lr.decay_style = LrDecayStyle::kCosine;
  t.lr.train_iters = kIters;
  t.lr.lr_decay_iters = kIters;
  t.lr.lr_warmup_iters = 4;
  t.lr.global_batch_size = kB * kAccum;
  t.adam = {0.9f, 0.95f, 1e-8f, 0.1f};
  return t;
}

// Batches whose targets follow a learnable rule (next = 7*cur + 3 mod V, 10% noise),
// so the loss falls visibly within 20 iterations.
std::vector<std::vector<int>> MakeBatches(int V) {
  std::mt19937 gen(2024);
  std::vector<std::vector<int>> batches;  // each: inputs (B*T) then targets (B*T)
  for (int n = 0; n < kNumBatches; ++n) {
    std::vector<int> seq((kT + 1) * kB), io(2 * kB * kT);
    for (int b = 0; b < kB; ++b) {
      int tok = static_cast<int>(gen() % V);
      for (int t = 0; t <= kT; ++t) {
        seq[b * (kT + 1) + t] = tok;
        tok = gen() % 10 == 0 ? static_cast<int>(gen() % V) : (7 * tok + 3) % V;
      }
      for (int t = 0; t < kT; ++t) {
        io[b * kT + t] = seq[b * (kT + 1) + t];
        io[kB * kT + b * kT + t] = seq[b * (kT + 1) + t + 1];
      }
    }
    batches.push_back(io);
  }
  return batches;
}

class ReferenceTest : public ::testing::TestWithParam<bool> {
 protected:
  static void SetUpTestSuite() {
    if (access(kPython, X_OK) != 0 ||
        coord::testing::RunCommand({kPython, "-c", "import torch"}).exit_code != 0) {
      skip_reason_ = std::string(kPython) + " with torch (Debian python3-torch) not available";
      return;
    }
    tmp_ = std::make_unique<coord::testing::TempDir>();
    dir_ = tmp_->path();
    const GptConfig config = TinyConfig(false);
    auto model = GptModel::Create(config, kB, kT);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    (*model)->InitMegatron(1234);
    ASSERT_TRUE(ExportHfGpt2(dir_ + "/weights", config, (*model)->param_data()).ok());

    batches_ = MakeBatches(config.vocab_size);
    std::ofstream bf(dir_ + "/batches.bin", std::ios::binary);
    const int header[4] = {0x42545047, kNumBatches, kB, kT};
    bf.write(reinterpret_cast<const char*>(header), sizeof(header));
    for (const auto& b : batches_) bf.write(reinterpret_cast<const char*>(b.data()), b.size() * 4);
    bf.close();

    const TrainConfig t = MakeTrainConfig();
    nlohmann::json tj = {{"lr", t.lr.lr},
                         {"min_lr", t.lr.min_lr},
                         {"lr_decay_style", "cosine"},
                         {"train_iters", kIters},
                         {"lr_decay_iters", t.lr.lr_decay_iters},
                         {"lr_warmup_iters", t.lr.lr_warmup_iters},
                         {"micro_batch_size", kB},
                         {"accum", kAccum},
                         {"beta1", t.adam.beta1},
                         {"beta2", t.adam.beta2},
                         {"eps", t.adam.eps},
                         {"weight_decay", t.adam.weight_decay},
                         {"clip_grad", t.clip_grad}};
    std::ofstream(dir_ + "/train.json") << tj.dump();
    const std::string script = std::string(COORD_SOURCE_DIR) + "/tests/reference/gpt_reference.py";
    // The deadline only bounds a hung run: the reference takes seconds.
    const coord::testing::RunResult run = coord::testing::RunCommand(
        {kPython, script, "--weights", dir_ + "/weights", "--batches", dir_ + "/batches.bin",
         "--out", dir_, "--padded-vocab", std::to_string(config.padded_vocab_size()), "--train",
         dir_ + "/train.json"},
        {}, /*timeout_ms=*/600000);
    coord::testing::WriteTextFile(dir_ + "/reference.log", run.out + run.err);
    ASSERT_EQ(run.exit_code, 0) << "gpt_reference.py failed:\n" << run.out << run.err;
    auto ref = coord::ReadFile(dir_ + "/ref.json");
    ASSERT_TRUE(ref.ok());
    ref_ = nlohmann::json::parse(*ref);
  }

  static void TearDownTestSuite() {
    if (tmp_ && std::getenv("KEEP_REFERENCE_DIR") != nullptr) tmp_->Keep();
    tmp_.reset();
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    ASSERT_FALSE(ref_.is_null()) << "reference run failed (see the first test's message)";
  }

  // A model in the parameterised mode, loaded from the exported weights.
  std::unique_ptr<GptModel> LoadModel() {
    auto model = GptModel::Create(TinyConfig(GetParam()), kB, kT);
    EXPECT_TRUE(model.ok());
    coord::Status s = ImportHfGpt2(dir_ + "/weights", (*model)->config(), (*model)->param_data());
    EXPECT_TRUE(s.ok()) << s.ToString();
    return std::move(*model);
  }
  float ForwardBatch(GptModel* model, int n) {
    const std::vector<int>& b = batches_[n % kNumBatches];
    auto loss = model->Forward(b.data(), b.data() + kB * kT, kB, kT, StepOptions{});
    EXPECT_TRUE(loss.ok()) << loss.status().ToString();
    return loss.ok() ? *loss : NAN;
  }

  static inline std::unique_ptr<coord::testing::TempDir> tmp_;
  static inline std::string skip_reason_, dir_;
  static inline std::vector<std::vector<int>> batches_;
  static inline nlohmann::json ref_;
};

TEST_P(ReferenceTest, LossAndEveryGradientMatchPyTorch) {
  auto model = LoadModel();
  const double loss = ForwardBatch(model.get(), 0);
  const double ref_loss = ref_["loss0"].get<double>();
  EXPECT_LT(std::abs(loss - ref_loss) / ref_loss, 1e-5) << loss << " vs " << ref_loss;
  ASSERT_TRUE(model->Backward(1.0f).ok());
  // Our gradients in HF names/layouts, through the same exporter as the weights.
  const std::string ours = dir_ + (GetParam() ? "/grads_ckpt" : "/grads");
  ASSERT_TRUE(ExportHfGpt2(ours, model->config(), model->grad_data()).ok());
  auto a = SafetensorsFile::Read(ours + "/model.safetensors");
  auto b = SafetensorsFile::Read(dir_ + "/ref_grads.safetensors");
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->tensors().size(), b->tensors().size());
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
  // Padded vocabulary rows get exactly zero gradient.
  const GptConfig& c = model->config();
  for (size_t i = static_cast<size_t>(c.vocab_size) * c.hidden_size;
       i < static_cast<size_t>(c.padded_vocab_size()) * c.hidden_size; ++i) {
    ASSERT_EQ(model->grads().wte[i], 0.0f);
  }
  std::printf(
      "[ figures ] checkpoint_activations=%d loss %.9f ref %.9f rel %.2e; worst grad rel "
      "err %.2e\n",
      GetParam(), loss, ref_loss, std::abs(loss - ref_loss) / ref_loss, worst);
}

TEST_P(ReferenceTest, TwentyAdamWItersWithWarmupCosineClippingMatchPyTorch) {
  auto model = LoadModel();
  const TrainConfig t = MakeTrainConfig();
  auto schedule = LrSchedule::Create(t.lr);
  ASSERT_TRUE(schedule.ok());
  AdamW adam(model->layout(), t.adam);
  const auto& ref_losses = ref_["train_losses"];
  ASSERT_EQ(ref_losses.size(), static_cast<size_t>(kIters));
  double worst = 0.0;
  int clipped = 0;
  for (int it = 1; it <= kIters; ++it) {
    const double lr = schedule->LrForIteration(it);
    EXPECT_NEAR(lr, ref_["lrs"][it - 1].get<double>(), 1e-15) << "iteration " << it;
    model->ZeroGrad();
    double loss = 0.0;
    for (int m = 0; m < kAccum; ++m) {
      loss += ForwardBatch(model.get(), (it - 1) * kAccum + m) / static_cast<double>(kAccum);
      ASSERT_TRUE(model->Backward(1.0f / kAccum).ok());
    }
    const double norm = ClipGradNorm(model->grad_data(), model->num_params(), t.clip_grad);
    clipped += norm > t.clip_grad;
    adam.Step(model->param_data(), model->grad_data(), static_cast<float>(lr));
    const double ref_loss = ref_losses[it - 1].get<double>();
    const double err = std::abs(loss - ref_loss) / ref_loss;
    worst = std::max(worst, err);
    EXPECT_LT(err, 1e-4) << "iteration " << it << ": " << loss << " vs " << ref_loss;
    EXPECT_LT(std::abs(norm - ref_["grad_norms"][it - 1].get<double>()) / norm, 1e-4) << it;
    if (it == 1 || it == kIters) {
      std::printf("[ figures ] ckpt=%d iter %2d lr %.3e loss %.7f ref %.7f grad_norm %.5f\n",
                  GetParam(), it, lr, loss, ref_loss, norm);
    }
  }
  EXPECT_GT(clipped, 0) << "the test should exercise clipping";
  std::printf("[ figures ] ckpt=%d worst train-loss rel err over %d iters: %.2e (%d clipped)\n",
              GetParam(), kIters, worst, clipped);
}

INSTANTIATE_TEST_SUITE_P(CheckpointActivations, ReferenceTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Checkpointed" : "Plain"; });

}  // namespace
}  // namespace trainer
