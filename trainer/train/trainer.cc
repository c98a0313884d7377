// The training loop (trainer.h): setup, resume, train step, evaluation, saving, on
// one data-parallel rank of comm_->size().
#include "trainer/train/trainer.h"

#include <omp.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "common/fs.h"
#include "common/logging.h"
#include "trainer/checkpoint/megatron_checkpoint.h"
#include "trainer/checkpoint/save_fence.h"
#include "trainer/checkpoint/tp_checkpoint.h"
#include "trainer/data/preprocess.h"
#include "trainer/optim/adamw.h"
#include "trainer/optim/loss_scaler.h"

namespace gpt_rank::train {
namespace {

using Clock = std::chrono::steady_clock;
std::atomic<bool> g_stop_requested{false};

double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::string Hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// The cache key of a preprocessed loose-JSON file: what changes its tokens.
coord::StatusOr<std::string> CachePrefix(const DataConfig& data) {
  struct stat st {};
  if (stat(data.train_data.c_str(), &st) != 0) {
    return coord::NotFound("data.train_data: " + data.train_data + ": " + std::strerror(errno));
  }
  const std::string key = data.train_data + "|" + std::to_string(st.st_size) + "|" +
                          std::to_string(st.st_mtime) + "|" + data.vocab_file + "|" +
                          data.merge_file + "|" + data.json_key + "|" +
                          (data.skip_bad_lines ? "skip" : "strict") +
                          // (Hugging Face tokenizers only, so GPT-2 keys stay as they were.)
                          (TokenizerSpecOf(data).model.empty()
                               ? ""
                               : "|" + data.tokenizer_type + "|" + TokenizerSpecOf(data).model);
  std::string stem = data.train_data.substr(data.train_data.find_last_of('/') + 1);
  stem = stem.substr(0, stem.find('.'));
  return coord::JoinPath(
      data.cache_dir, stem + "-" + Hex(trainer::Xxh64(key.data(), key.size())) + "_text_document");
}

}  // namespace

// ---------------------------------------------------------------------------
// Data

coord::StatusOr<std::unique_ptr<trainer::data::IndexedDataset>> OpenTrainingData(
    const DataConfig& data, trainer::data::Tokenizer* tokenizer) {
  namespace td = trainer::data;
  if (!data.data_path.empty()) {
    auto ds = td::IndexedDataset::Open(data.data_path);
    if (!ds.ok()) return ds.status().WithContext("data.data_path");
    return ds;
  }
  ASSIGN_OR_RETURN(std::string prefix, CachePrefix(data));
  if (!coord::PathExists(td::IndexPath(prefix))) {
    RETURN_IF_ERROR(coord::MakeDirs(data.cache_dir));
    LOG_INFO << "preprocessing " << data.train_data << " into " << prefix << " (once)";
    td::PreprocessOptions options;
    options.input = data.train_data;
    options.output_prefix = prefix;
    options.json_key = data.json_key;
    options.append_eod = true;
    options.skip_bad_lines = data.skip_bad_lines;
    const Clock::time_point t0 = Clock::now();
    auto stats = td::PreprocessLooseJson(options, tokenizer);
    if (!stats.ok()) return stats.status().WithContext("data.train_data");
    LOG_INFO << "preprocessed " << stats->documents << " documents, " << stats->tokens
             << " tokens in " << static_cast<int64_t>(MsSince(t0)) << " ms"
             << (stats->skipped_lines > 0
                     ? "; skipped " + std::to_string(stats->skipped_lines) + " bad lines"
                     : "");
  }
  return td::IndexedDataset::Open(prefix);
}

// ---------------------------------------------------------------------------
// Setup

void Trainer::RequestStop() { g_stop_requested.store(true); }

Trainer::Trainer(const TrainerConfig& config) : config_(config) {}
Trainer::~Trainer() = default;

coord::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const TrainerConfig& config,
                                                          ParallelGroups* groups,
                                                          dist::KeyValueStore* store) {
  RETURN_IF_ERROR(CheckTrainable(config));
  std::unique_ptr<Trainer> t(new Trainer(config));
  RETURN_IF_ERROR(t->Setup(groups, store));
  return t;
}

coord::StatusOr<double> Trainer::MeanOverRanks(double value) {
  RETURN_IF_ERROR(comm_->AllReduceSum(&value, 1));
  return value / comm_->size();
}

void Trainer::WrapGroups(ParallelGroups* groups) {
  using dist::CommGroup;
  using dist::TimedCommunicator;
  coord::FlightRecorder* r = recorder_.get();
  tp_timed_ = std::make_unique<TimedCommunicator>(groups->tensor, CommGroup::kTensor, "tp", r);
  dp_timed_ = std::make_unique<TimedCommunicator>(groups->data, CommGroup::kData, "dp", r);
  pp_timed_ = std::make_unique<TimedCommunicator>(groups->pipeline, CommGroup::kPipeline, "pp", r);
  world_timed_ = std::make_unique<TimedCommunicator>(groups->world, CommGroup::kOther, "world", r);
  if (groups->embedding != nullptr) {
    embedding_timed_ = std::make_unique<TimedCommunicator>(groups->embedding, CommGroup::kPipeline,
                                                           "embedding", r);
  }
  if (inject_.hang.first == groups->world->rank()) {
    // The gradient buckets' all-reduce runs on the reducer thread: hence the atomics.
    dp_timed_->set_before_call([this](coord::CollectiveOp op, uint64_t seq) {
      if (in_progress_.load() != inject_.hang.second || hang_injected_.exchange(true)) return;
      LOG_WARN << "GPT_RANK_INJECT_HANG: stopping inside " << coord::CollectiveOpName(op) << " #"
               << seq << " (dp) of iteration " << inject_.hang.second;
      raise(SIGSTOP);
    });
  }
  timed_groups_.world = world_timed_.get();
  timed_groups_.tensor = tp_timed_.get();
  timed_groups_.data = dp_timed_.get();
  timed_groups_.pipeline = pp_timed_.get();
  timed_groups_.embedding = embedding_timed_.get();
  groups_ = &timed_groups_;
}

coord::Status Trainer::Setup(ParallelGroups* groups, dist::KeyValueStore* store) {
  TrainingConfig& tr = config_.training;
  if (groups == nullptr) {
    own_comm_ = dist::MakeSelfCommunicator();
    own_groups_ = SingleProcessGroups(own_comm_.get());
    groups = &own_groups_;
  }
  ASSIGN_OR_RETURN(inject_, FaultInjectionFromEnv());
  const char* flight = std::getenv("COORD_FLIGHT_RECORD");
  ASSIGN_OR_RETURN(recorder_, coord::FlightRecorder::Create(flight != nullptr ? flight : "",
                                                            groups->world->rank()));
  WrapGroups(groups);
  comm_ = groups_->world;
  dp_comm_ = groups_->data;
  if (comm_->size() != config_.parallel.world_size ||
      groups->tp_size() != config_.parallel.tensor_model_parallel_size ||
      groups->pp_size() != config_.parallel.pipeline_model_parallel_size) {
    return coord::FailedPrecondition(
        "the process groups have " + std::to_string(comm_->size()) + " ranks, tensor parallel " +
        std::to_string(groups->tp_size()) + ", pipeline parallel " +
        std::to_string(groups->pp_size()) + "; the config was parsed for WORLD_SIZE=" +
        std::to_string(config_.parallel.world_size) + ", tensor_model_parallel_size " +
        std::to_string(config_.parallel.tensor_model_parallel_size) +
        ", pipeline_model_parallel_size " +
        std::to_string(config_.parallel.pipeline_model_parallel_size));
  }
  if (!tr.tensorboard_dir.empty()) {  // before any work: an unwritable dir stops every rank
    coord::Status opened;
    if (is_root()) {
      auto tb = TensorBoardLog::Open(tr, comm_->size());
      opened = tb.status();
      if (tb.ok()) tensorboard_ = std::move(*tb);
    }
    RETURN_IF_ERROR(Agree(opened, "opening training.tensorboard_dir"));
  }
  // Claim the save directory for this generation before any work, so a rank of an
  // older one still alive somewhere can publish nothing there from now on.
  if (!tr.save.empty() && trainer::ProcessSaveOwner() != nullptr) {
    RETURN_IF_ERROR(Agree(is_root() ? trainer::ClaimSaveDir(tr.save, *trainer::ProcessSaveOwner())
                                    : coord::Status::Ok(),
                          "claiming training.save " + tr.save));
  }
  if (tr.threads > 0) omp_set_num_threads(tr.threads);
  num_micro_batches_ = tr.global_batch_size / (tr.micro_batch_size * dp_comm_->size());
  auto tok = trainer::data::LoadTokenizer(TokenizerSpecOf(config_.data));
  if (!tok.ok()) return tok.status().WithContext("data's tokenizer");
  tokenizer_ = std::move(*tok);
  if (!config_.vocab_size_given) config_.model.vocab_size = tokenizer_->vocab_size();
  config_.model.seed = tr.seed;
  RETURN_IF_ERROR(SetupData());

  const trainer::GptConfig& mc = config_.model;
  if (config_.parallel.precision == "fp16") {
    scaler_ = std::make_unique<trainer::LossScaler>(tr.loss_scaler);
    LOG_INFO << "fp16: loss scale " << scaler_->scale()
             << (tr.loss_scaler.dynamic
                     ? " (dynamic: window " + std::to_string(tr.loss_scaler.scale_window) +
                           ", hysteresis " + std::to_string(tr.loss_scaler.hysteresis) + ", min " +
                           std::to_string(tr.loss_scaler.min_scale) + ")"
                     : " (static)");
  }
  if (tr.device == "cpu" && config_.parallel.precision != "fp32") {
    LOG_WARN << config_.source_path << ": " << config_.parallel.precision
             << " requested; the CPU backend computes in fp32 (its reference precision)"
             << (scaler_ != nullptr ? ", with the fp16 loss scaling as configured" : "")
             << ". Set training.device \"cuda\" to train in " << config_.parallel.precision;
  }
  ASSIGN_OR_RETURN(shard_, CreateModelShard(config_, *groups_, store));
  shard_->set_phase_hook([this](coord::RankPhase phase, int64_t m) {
    recorder_->SetPhase(phase, static_cast<int32_t>(m));
  });
  ASSIGN_OR_RETURN(trainer::LrSchedule schedule, trainer::LrSchedule::Create(tr.lr));
  schedule_ = std::make_unique<trainer::LrSchedule>(schedule);
  LOG_INFO << "model: " << mc.num_layers << " layers, hidden " << mc.hidden_size << ", "
           << mc.num_attention_heads << " heads, seq " << mc.seq_length << ", vocab "
           << mc.vocab_size << " (padded " << mc.padded_vocab_size()
           << "): " << shard_->num_params() << " parameters; " << shard_->Describe();
  if (groups_->tp_size() > 1) {
    LOG_INFO << "tensor parallel: " << groups_->tp_size() << " ranks per group (" 
             << groups_->tensor->backend() << "), this rank's shard holds " << shard_->num_params()
             << " parameters";
  }
  if (groups_->pp_size() > 1) {
    LOG_INFO << "pipeline parallel: " << groups_->pp_size() << " stages ("
             << groups_->pipeline->backend() << "), this rank is stage " << groups_->stage()
             << (config_.parallel.virtual_pipeline_model_parallel_size > 1
                     ? ", " + std::to_string(config_.parallel.virtual_pipeline_model_parallel_size) +
                           " virtual chunks each (interleaved schedule)"
                     : " (1F1B schedule)")
             << "; " << num_micro_batches_ << " micro-batches per iteration";
  }
  if (dp_comm_->size() > 1) {
    LOG_INFO << "data parallel: " << dp_comm_->size() << " ranks (" << dp_comm_->backend() << "), "
             << num_micro_batches_ << " micro-batches of " << tr.micro_batch_size
             << " per rank and iteration, buckets of " << config_.parallel.bucket_cap_mb << " MiB"
             << (config_.parallel.overlap_grad_reduce ? " overlapped with backward" : "");
  }
  inputs_.resize(static_cast<size_t>(tr.micro_batch_size * mc.seq_length));
  targets_.resize(inputs_.size());
  if (!tr.load.empty()) RETURN_IF_ERROR(Resume());
  ASSIGN_OR_RETURN(auto progress_fd, ProgressFdFromEnv());
  // Every rank reports progress (hang detection); only rank 0 writes metrics.
  ASSIGN_OR_RETURN(MetricsSink sink,
                   MetricsSink::Open(is_root() ? tr.metrics_file : "", progress_fd));
  metrics_ = std::make_unique<MetricsSink>(std::move(sink));
  return coord::Status::Ok();
}

coord::Status Trainer::SetupData() {
  namespace td = trainer::data;
  const TrainingConfig& tr = config_.training;
  if (config_.data.format == "sft") return SetupSftData();
  // Rank 0 preprocesses a loose-JSON corpus (once, into the cache) while the others
  // wait, instead of every rank tokenizing the same file at once.
  if (is_root()) {
    auto ds = OpenTrainingData(config_.data, tokenizer_.get());
    RETURN_IF_ERROR(Agree(ds.status(), "opening the training data"));
    dataset_ = std::move(*ds);
  } else {
    RETURN_IF_ERROR(Agree(coord::Status::Ok(), "opening the training data"));
    ASSIGN_OR_RETURN(dataset_, OpenTrainingData(config_.data, tokenizer_.get()));
  }
  auto bounds = td::SplitDocuments(config_.data.split, dataset_->num_documents());
  if (!bounds.ok()) return bounds.status().WithContext("data.split");
  const auto num_samples = td::TrainValidTestNumSamples(tr.train_iters, tr.eval_interval,
                                                        tr.eval_iters, tr.global_batch_size);
  td::GptDatasetOptions o;
  o.seq_length = config_.model.seq_length;
  o.seed = config_.data.seed;
  o.name = "train";
  o.first_document = (*bounds)[0];
  o.end_document = (*bounds)[1];
  o.num_samples = num_samples[0];
  ASSIGN_OR_RETURN(train_ds_, td::GptDataset::Build(dataset_.get(), o));
  // Tensor-parallel ranks of a group read the same samples: the data-parallel rank
  // picks the slice.
  ASSIGN_OR_RETURN(auto ts, td::PretrainingSampler::Create(train_ds_->size(), tr.micro_batch_size,
                                                           dp_comm_->rank(), dp_comm_->size()));
  train_sampler_ = std::make_unique<td::PretrainingSampler>(ts);
  LOG_INFO << "data: " << dataset_->num_documents() << " documents, " << dataset_->num_tokens()
           << " tokens; split " << config_.data.split << ": train documents [" << (*bounds)[0]
           << ", " << (*bounds)[1] << "), " << train_ds_->size() << " samples, "
           << train_ds_->num_epochs() << " epochs";
  if (tr.eval_iters == 0) return coord::Status::Ok();
  if ((*bounds)[2] <= (*bounds)[1]) {
    LOG_WARN << "data.split " << config_.data.split << " leaves no validation documents; "
             << "no evaluation";
    return coord::Status::Ok();
  }
  o.name = "valid";
  o.first_document = (*bounds)[1];
  o.end_document = (*bounds)[2];
  o.num_samples = num_samples[1];
  ASSIGN_OR_RETURN(valid_ds_, td::GptDataset::Build(dataset_.get(), o));
  ASSIGN_OR_RETURN(auto vs, td::PretrainingSampler::Create(valid_ds_->size(), tr.micro_batch_size,
                                                           dp_comm_->rank(), dp_comm_->size()));
  valid_sampler_ = std::make_unique<td::PretrainingSampler>(vs);
  return coord::Status::Ok();
}

coord::Status Trainer::SetupSftData() {
  const TrainingConfig& tr = config_.training;
  const auto num_samples = trainer::data::TrainValidTestNumSamples(
      tr.train_iters, tr.eval_interval, tr.eval_iters, tr.global_batch_size);
  // Every rank reads the file; they agree on whether it worked.
  auto sft = SftBatches::Create(config_, tokenizer_.get(), num_samples[0], num_samples[1],
                                dp_comm_->rank(), dp_comm_->size());
  RETURN_IF_ERROR(Agree(sft.status(), "reading the chat dataset"));
  sft_ = std::move(*sft);
  if (is_root()) {
    for (const std::string& line : sft_->report()) LOG_INFO << line;
    if (tr.eval_iters > 0 && !sft_->has_valid()) {
      LOG_WARN << "data.split_dataset_ratio " << config_.data.sft.split_dataset_ratio
               << " holds out no sample; no evaluation";
    }
  }
  return coord::Status::Ok();
}

trainer::ModelLayout Trainer::ModelLayout() const {
  return trainer::ModelLayout{groups_->tp_size(), groups_->tensor->rank(), groups_->pp_size(),
                              groups_->stage(),
                              config_.parallel.virtual_pipeline_model_parallel_size};
}

coord::Status Trainer::Resume() {
  const std::string& dir = config_.training.load;
  if (!trainer::HasCheckpoint(dir)) {
    LOG_WARN << "training.load: no checkpoint in " << dir << "; starting from scratch";
    return coord::Status::Ok();
  }
  // Each rank reads the parameters and the optimizer state of its own shard, from
  // full tensors or from whichever saved shards overlap it (re-sharding).
  const size_t opt_begin = shard_->optimizer_begin(), opt_end = shard_->optimizer_end();
  trainer::OptimizerRange range{opt_begin, opt_end, true};
  // Any model-parallel layout loads into this one (re-sharded when it differs).
  auto loaded = trainer::LoadCheckpointForLayout(dir, config_.model, ModelLayout(), range);
  if (!loaded.ok()) return loaded.status().WithContext("training.load");
  if (is_root()) {
    for (const std::string& w : loaded->warnings) LOG_WARN << w;
  }
  const size_t shard = opt_end - opt_begin;
  if (loaded->adam_m.size() != shard) {
    return coord::Internal("training.load: optimizer range of " +
                           std::to_string(loaded->adam_m.size()) + " floats, expected " +
                           std::to_string(shard));
  }
  const trainer::TrainState& s = loaded->state;
  // The same files on every backend: any device resumes any other's checkpoint.
  RETURN_IF_ERROR(shard_->LoadState(loaded->params.data(), loaded->adam_m.data(),
                                    loaded->adam_v.data(), s.adam_step));
  if (scaler_ != nullptr && s.loss_scale > 0) {
    scaler_->set_state(
        {s.loss_scale, s.loss_scale_iter, s.loss_scale_last_overflow, s.loss_scale_hysteresis});
  }
  iteration_ = s.iteration;
  consumed_train_samples_ = s.consumed_train_samples;
  consumed_valid_samples_ = s.consumed_valid_samples;
  if (s.seed != config_.training.seed) {
    LOG_WARN << "training.seed " << config_.training.seed << " differs from the checkpoint's "
             << s.seed << "; dropout follows the checkpoint's counter with the new seed";
  }
  if (config_.training.save == dir) last_saved_iteration_ = iteration_;
  LOG_INFO << "resumed from " << loaded->path << ": iteration " << iteration_
           << ", consumed samples " << consumed_train_samples_
           << (loaded->saved_dp_shards > 1
                   ? "; optimizer state from " + std::to_string(loaded->saved_dp_shards) +
                         " ZeRO shards, re-sharded for " + std::to_string(dp_comm_->size()) +
                         " ranks"
                   : "");
  return coord::Status::Ok();
}

// ---------------------------------------------------------------------------
// Steps

coord::Status Trainer::LoadBatch(const trainer::data::GptDataset& ds,
                                 const std::vector<int64_t>& idx) {
  const size_t T = static_cast<size_t>(config_.model.seq_length);
  const int V = config_.model.vocab_size;
  for (size_t b = 0; b < idx.size(); ++b) {
    RETURN_IF_ERROR(ds.GetItem(idx[b], &sample_));
    for (size_t t = 0; t < T; ++t) {
      inputs_[b * T + t] = sample_[t];
      targets_[b * T + t] = sample_[t + 1];
    }
  }
  for (size_t i = 0; i < idx.size() * T; ++i) {
    if (inputs_[i] < 0 || inputs_[i] >= V || targets_[i] < 0 || targets_[i] >= V) {
      const int bad = std::max(inputs_[i], targets_[i]);
      return coord::InvalidArgument("token id " + std::to_string(bad) +
                                    " in the data is outside the vocabulary (" + std::to_string(V) +
                                    ")");
    }
  }
  return coord::Status::Ok();
}

coord::Status Trainer::TrainStep(double* loss, double* grad_norm) {
  const int64_t it = iteration_ + 1;
  in_progress_ = it;
  recorder_->SetIteration(it);
  step_timer_.BeginStep();
  const double loss_scale = scaler_ != nullptr ? scaler_->scale() : 1.0;
  // Every micro-batch of every rank contributes 1/(micro-batches x ranks) of the
  // gradient, so the reduction's sum is the mean over the global batch; fp16 scales
  // the loss on top (undone in the update).
  const float contribution = static_cast<float>(
      loss_scale / static_cast<double>(num_micro_batches_ * static_cast<int64_t>(dp_comm_->size())));
  RETURN_IF_ERROR(shard_->ZeroGrad());
  const Clock::time_point fb0 = Clock::now();
  ASSIGN_OR_RETURN(const double local_loss,
                   shard_->ForwardBackward(Loader(false, consumed_train_samples_, true),
                                           num_micro_batches_, contribution));
  const double fb_ms = MsSince(fb0);
  forward_backward_s_ += fb_ms / 1000.0;
  step_timer_.EndForwardBackward(fb_ms);
  recorder_->SetPhase(coord::RankPhase::kOptimizer);
  if (std::find(inject_.overflow_at.begin(), inject_.overflow_at.end(), it) !=
      inject_.overflow_at.end()) {
    LOG_WARN << "GPT_RANK_INJECT_OVERFLOW: forcing an inf gradient at iteration " << it;
    RETURN_IF_ERROR(shard_->InjectGradOverflow());
  }
  ASSIGN_OR_RETURN(*loss, MeanOverRanks(local_loss));
  ASSIGN_OR_RETURN(const double norm_sq, shard_->GradNormSquared());
  *grad_norm = std::sqrt(norm_sq) / loss_scale;
  if (scaler_ != nullptr && !std::isfinite(*grad_norm) && std::isfinite(*loss)) {
    // fp16 overflow: skip the update, lower the scale (DeepSpeed); the iteration and
    // its samples still count, as they do there.
    if (is_root()) {
      LOG_WARN << scaler_->DescribeOverflow(it);
    }
    RETURN_IF_ERROR(scaler_->Update(true).WithContext("iteration " + std::to_string(it)));
    ++skipped_iterations_;
    consumed_train_samples_ += config_.training.global_batch_size;
    iteration_ = it;
    return coord::Status::Ok();
  }
  if (!std::isfinite(*loss) || !std::isfinite(*grad_norm)) {
    char what[160];
    std::snprintf(what, sizeof(what), "iteration %lld: lm loss is %g and grad norm %g",
                  static_cast<long long>(it), *loss, *grad_norm);
    return coord::Status(coord::StatusCode::kAborted,
                         std::string(what) +
                             "; stopping before the optimizer step (no update "
                             "applied). " +
                             LastCheckpointText());
  }
  const double coef = trainer::ClipCoefficient(*grad_norm, config_.training.clip_grad);
  const float lr = static_cast<float>(schedule_->LrForIteration(it));
  const Clock::time_point opt0 = Clock::now();
  RETURN_IF_ERROR(shard_->Step(lr, static_cast<float>(coef / loss_scale)));
  optimizer_s_ += MsSince(opt0) / 1000.0;
  step_timer_.SetOptimizerMs(MsSince(opt0));
  if (scaler_ != nullptr) RETURN_IF_ERROR(scaler_->Update(false));
  consumed_train_samples_ += config_.training.global_batch_size;
  iteration_ = it;
  return coord::Status::Ok();
}

coord::StatusOr<double> Trainer::Evaluate() {
  recorder_->SetPhase(coord::RankPhase::kEvaluation);
  double total = 0.0;
  for (int64_t k = 0; k < config_.training.eval_iters; ++k) {
    ASSIGN_OR_RETURN(const double loss,
                     shard_->ForwardOnly(Loader(true, consumed_valid_samples_, false),
                                         num_micro_batches_));
    total += loss;
    consumed_valid_samples_ += config_.training.global_batch_size;
  }
  ASSIGN_OR_RETURN(double mean, MeanOverRanks(total));
  return mean / static_cast<double>(config_.training.eval_iters);
}

MicroBatchLoader Trainer::Loader(bool valid, int64_t consumed, bool training) {
  return [this, valid, consumed, training](int64_t m) -> coord::StatusOr<MicroBatch> {
    if (training && g_stop_requested.load()) {
      return coord::Status(coord::StatusCode::kCancelled, "stop");
    }
    if (training && m == 1 && inject_.stop.first == groups_->stage() &&
        inject_.stop.second == iteration_ + 1) {
      LOG_WARN << "GPT_RANK_INJECT_STOP: stopping pipeline stage " << inject_.stop.first
               << " at iteration " << inject_.stop.second;
      raise(SIGSTOP);
    }
    recorder_->SetPhase(coord::RankPhase::kDataLoading, static_cast<int32_t>(m));
    const Clock::time_point load0 = Clock::now();
    if (sft_ != nullptr) {
      auto mb = sft_->Load(valid, consumed, m, num_micro_batches_);
      if (training) step_timer_.AddDataMs(MsSince(load0));
      return mb;
    }
    const trainer::data::GptDataset& ds = valid ? *valid_ds_ : *train_ds_;
    ASSIGN_OR_RETURN(std::vector<int64_t> idx,
                     (valid ? valid_sampler_ : train_sampler_)->MicroBatch(consumed, m));
    RETURN_IF_ERROR(LoadBatch(ds, idx));
    if (training) step_timer_.AddDataMs(MsSince(load0));
    if (training && m == 0) inject_.MaybeDelay(comm_->rank(), iteration_ + 1);  // as compute
    MicroBatch mb;
    mb.inputs = inputs_.data();
    mb.targets = targets_.data();
    mb.batch = static_cast<int>(config_.training.micro_batch_size);
    mb.seq = config_.model.seq_length;
    // Dropout masks follow the sample's position in the global order (idx is a
    // contiguous run of it), so they do not depend on the rank count.
    mb.rng_step = static_cast<uint64_t>(idx.front());
    return mb;
  };
}

coord::Status Trainer::EvaluateAndPrint(const std::string& prefix) {
  if (valid_ds_ == nullptr && (sft_ == nullptr || !sft_->has_valid())) return coord::Status::Ok();
  ASSIGN_OR_RETURN(double loss, Evaluate());
  if (!is_root()) return coord::Status::Ok();
  LOG_INFO << "\n" << FormatValidationBlock(prefix, loss);
  if (tensorboard_ != nullptr) tensorboard_->OnValidation(iteration_, consumed_train_samples_, loss);
  return metrics_->WriteValidation(iteration_, loss);
}

coord::Status Trainer::Agree(const coord::Status& local, const std::string& what) {
  const int n = comm_->size();
  if (n == 1) return local;
  std::vector<double> failed(static_cast<size_t>(n), 0.0);
  failed[static_cast<size_t>(comm_->rank())] = local.ok() ? 0.0 : 1.0;
  coord::Status s = comm_->AllGather(failed.data(), std::vector<size_t>(static_cast<size_t>(n), 1),
                                     dist::DataType::kFloat64);
  if (!s.ok()) return local.ok() ? s : local;
  if (!local.ok()) return local;
  for (int r = 0; r < n; ++r) {
    if (failed[static_cast<size_t>(r)] != 0.0) {
      return coord::Status(coord::StatusCode::kAborted,
                           what + " failed on rank " + std::to_string(r) + " (see its log)");
    }
  }
  return coord::Status::Ok();
}

std::string Trainer::LastCheckpointText() const {
  if (last_saved_iteration_ < 0) return "No checkpoint was saved by this run.";
  return "The last good checkpoint is " +
         trainer::CheckpointIterDir(
             config_.training.save.empty() ? config_.training.load : config_.training.save,
             last_saved_iteration_) +
         " (kept).";
}

coord::Status Trainer::Save() {
  const std::string& dir = config_.training.save;
  if (dir.empty() || last_saved_iteration_ == iteration_) return coord::Status::Ok();
  recorder_->SetPhase(coord::RankPhase::kCheckpoint);
  trainer::TrainState s;
  s.iteration = iteration_;
  s.consumed_train_samples = consumed_train_samples_;
  s.consumed_valid_samples = consumed_valid_samples_;
  s.rng_step = consumed_train_samples_;  // the first sample of the next iteration
  s.seed = config_.training.seed;
  s.adam_step = shard_->optimizer_step();
  s.tensor_model_parallel_size = groups_->tp_size();
  s.pipeline_model_parallel_size = groups_->pp_size();
  s.virtual_pipeline_model_parallel_size = config_.parallel.virtual_pipeline_model_parallel_size;
  s.vocab_size = config_.model.vocab_size;
  if (scaler_ != nullptr) {
    const trainer::LossScaler::State ls = scaler_->state();
    s.loss_scale = ls.scale;
    s.loss_scale_iter = ls.iter;
    s.loss_scale_last_overflow = ls.last_overflow_iter;
    s.loss_scale_hysteresis = ls.hysteresis_left;
  }
  s.config_json = config_.job.dump(2);
  const Clock::time_point t0 = Clock::now();
  std::vector<float> scratch;  // the state, where it does not live on the host
  ASSIGN_OR_RETURN(const HostState host, shard_->StateOnHost(&scratch));
  if (!shard_->optimizer_shard_counts().empty() || groups_->tp_size() > 1 ||
      groups_->pp_size() > 1) {
    RETURN_IF_ERROR(SaveSharded(s, host));
  } else {
    // Rank 0 holds the whole optimizer (stage 0: every rank does); the others wait.
    coord::Status st;
    if (is_root()) {
      st = trainer::SaveCheckpoint(
          dir, s, {host.params, host.adam_m, host.adam_v, shard_->num_params()});
    }
    RETURN_IF_ERROR(Agree(st, "saving checkpoint iteration " + std::to_string(iteration_)));
  }
  last_saved_iteration_ = iteration_;
  LOG_INFO << "saved checkpoint at iteration " << iteration_ << " to "
           << trainer::CheckpointIterDir(dir, iteration_) << " in "
           << static_cast<int64_t>(MsSince(t0)) << " ms";
  return coord::Status::Ok();
}

// ZeRO, tensor and/or pipeline parallel: rank 0 prepares the directory; each
// model-parallel shard goes to its mp_rank_XX[_PPP], where every data-parallel rank
// writes its optimizer
// shard (ZeRO; without ZeRO data-parallel rank 0 writes the whole range) and
// data-parallel rank 0 the parameters; the records reach data-parallel rank 0, which
// checks them and writes the shard's manifest; rank 0 then installs the iteration.
// Any rank's failure fails the save on every rank.
coord::Status Trainer::SaveSharded(const trainer::TrainState& s, const HostState& host) {
  const std::string& dir = config_.training.save;
  const std::string what = "saving checkpoint iteration " + std::to_string(s.iteration);
  const int dp = dp_comm_->size(), dp_rank = dp_comm_->rank();
  const trainer::ModelShardId mp_rank(groups_->tensor->rank(), groups_->stage(),
                                      groups_->pp_size());
  const size_t n = shard_->num_params();
  std::vector<size_t> counts = shard_->optimizer_shard_counts();
  const bool zero = !counts.empty();
  if (!zero) {  // data-parallel rank 0 writes the whole range
    counts.assign(static_cast<size_t>(dp), 0);
    counts[0] = n;
  }
  RETURN_IF_ERROR(
      Agree(is_root() ? trainer::BeginShardedSave(dir, s.iteration) : coord::Status::Ok(), what));
  coord::Status local;
  trainer::CheckpointFileRecord record;
  if (zero || dp_rank == 0) {
    auto shard = trainer::WriteOptimizerShard(dir, s.iteration, dp_rank, host.adam_m, host.adam_v,
                                              counts[static_cast<size_t>(dp_rank)], mp_rank);
    local = shard.status();
    if (shard.ok()) record = *shard;
  }
  std::vector<trainer::CheckpointFileRecord> model_files;
  if (local.ok() && dp_rank == 0) {
    auto files = trainer::WriteShardedModelFiles(dir, s, host.params, n, mp_rank);
    local = files.status();
    if (files.ok()) model_files = std::move(*files);
  }
  coord::Status agreed = Agree(local, what);
  if (!agreed.ok()) {
    if (is_root()) trainer::AbortShardedSave(dir, s.iteration);
    return agreed;
  }
  std::vector<uint64_t> records(static_cast<size_t>(dp) * 2, 0);  // (size, xxh64) per dp rank
  records[static_cast<size_t>(dp_rank) * 2] = record.size;
  records[static_cast<size_t>(dp_rank) * 2 + 1] = record.xxh64;
  RETURN_IF_ERROR(dp_comm_->AllGather(records.data(), std::vector<size_t>(static_cast<size_t>(dp), 2),
                                      dist::DataType::kFloat64));  // bytes move untouched
  coord::Status manifest;
  if (dp_rank == 0) {
    std::vector<trainer::OptimizerShardInfo> shards;
    size_t begin = 0;
    for (int r = 0; r < dp; ++r) {
      const size_t count = counts[static_cast<size_t>(r)];
      if (!zero && r > 0) break;
      const std::string name = trainer::OptimizerShardFileName(r);
      model_files.push_back(
          {name, records[static_cast<size_t>(r) * 2], records[static_cast<size_t>(r) * 2 + 1]});
      shards.push_back({name, begin, begin + count});
      begin += count;
    }
    manifest = trainer::WriteShardManifest(dir, s, mp_rank, n, model_files, shards);
  }
  agreed = Agree(manifest, what);
  if (!agreed.ok()) {
    if (is_root()) trainer::AbortShardedSave(dir, s.iteration);
    return agreed;
  }
  coord::Status installed;
  if (is_root()) {
    installed = trainer::InstallShardedSave(dir, s, groups_->tp_size(), groups_->pp_size());
  }
  return Agree(installed, what);
}

// ---------------------------------------------------------------------------
// The loop

coord::Status Trainer::Run() {
  const TrainingConfig& tr = config_.training;
  const double tokens_per_iter =
      static_cast<double>(tr.global_batch_size) * config_.model.seq_length;
  const double flops_per_iter = FlopsPerIteration(config_.model, tr.global_batch_size);
  LOG_INFO << "training from iteration " << iteration_ << " to " << tr.train_iters;
  double interval_loss = 0.0, interval_ms = 0.0;
  int64_t interval_iters = 0;
  while (iteration_ < tr.train_iters) {
    const Clock::time_point t0 = Clock::now();
    double loss = 0.0, grad_norm = 0.0;
    coord::Status s = TrainStep(&loss, &grad_norm);
    if (s.code() == coord::StatusCode::kCancelled) {
      return coord::Status(coord::StatusCode::kCancelled,
                           "stop requested during iteration " + std::to_string(iteration_ + 1) +
                               "; exiting without saving. " + LastCheckpointText());
    }
    if (s.code() == coord::StatusCode::kAborted) {
      metrics_->WriteProgress(iteration_ + 1, loss, MsSince(t0));
    }
    if (s.code() == coord::StatusCode::kAborted) return s;  // names its iteration already
    if (!s.ok()) {
      // A pipeline stage says which it is: its neighbours' errors name it too.
      return s.WithContext((groups_->pp_size() > 1 ? "pipeline stage " +
                                                         std::to_string(groups_->stage()) + " of " +
                                                         std::to_string(groups_->pp_size()) + ", "
                                                   : std::string()) +
                           "iteration " + std::to_string(iteration_ + 1));
    }
    const double ms = MsSince(t0);
    ProgressRecord progress = ProgressFor(loss, ms);
    metrics_->WriteProgress(progress);
    if (tensorboard_ != nullptr) {
      tensorboard_->OnIteration({iteration_, consumed_train_samples_, loss, grad_norm,
                                 schedule_->LoggedLrForIteration(iteration_),
                                 scaler_ != nullptr ? scaler_->scale() : 0.0});
    }
    interval_loss += loss;
    interval_ms += ms;
    ++interval_iters;
    if (iteration_ % tr.log_interval == 0 || iteration_ == tr.train_iters) {
      IterationRecord r;
      r.iteration = iteration_;
      r.train_iters = tr.train_iters;
      r.consumed_samples = consumed_train_samples_;
      r.elapsed_ms = interval_ms / static_cast<double>(interval_iters);
      r.lr = schedule_->LoggedLrForIteration(iteration_);
      r.global_batch_size = tr.global_batch_size;
      r.lm_loss = interval_loss / static_cast<double>(interval_iters);
      r.grad_norm = grad_norm;
      r.loss_scale = scaler_ != nullptr ? scaler_->scale() : 0.0;
      r.skipped_iterations = skipped_iterations_;
      skipped_iterations_ = 0;
      r.tokens_per_s = tokens_per_iter / (r.elapsed_ms / 1000.0);
      r.tflops = flops_per_iter / (r.elapsed_ms / 1000.0) / 1e12 / comm_->size();
      const double per_iter_ms = 1000.0 / static_cast<double>(interval_iters);
      r.timers_ms = {{"forward-backward", forward_backward_s_ * per_iter_ms},
                     {"optimizer", optimizer_s_ * per_iter_ms},
                     {"tp-comm", tp_timed_->TakeSeconds() * per_iter_ms},
                     {"dp-comm", dp_timed_->TakeSeconds() * per_iter_ms}};
      if (groups_->pp_size() > 1) {
        r.timers_ms.push_back({"pp-comm", pp_timed_->TakeSeconds() * per_iter_ms});
      }
      forward_backward_s_ = optimizer_s_ = 0.0;
      if (is_root()) {
        LOG_INFO << FormatMegatronLogLine(r);
        LOG_INFO << FormatTimersLine(r);
        RETURN_IF_ERROR(metrics_->WriteMetrics(r));
        if (tensorboard_ != nullptr) tensorboard_->OnLogLine(r);
      }
      interval_loss = interval_ms = 0.0;
      interval_iters = 0;
    }
    if (tr.eval_iters > 0 && iteration_ % tr.eval_interval == 0) {
      RETURN_IF_ERROR(EvaluateAndPrint("iteration " + std::to_string(iteration_)));
      tp_timed_->TakeSeconds();  // the timers are the training step's
      dp_timed_->TakeSeconds();
      pp_timed_->TakeSeconds();
    }
    if (tr.save_interval > 0 && iteration_ % tr.save_interval == 0) {
      RETURN_IF_ERROR(Save());
      // The supervisor learns of the checkpoint now, not one iteration later.
      progress.checkpoint = last_saved_iteration_;
      metrics_->WriteProgress(progress);
    }
  }
  // As Megatron's pretrain(): evaluate once more at the end, then save.
  if (tr.eval_iters > 0) RETURN_IF_ERROR(EvaluateAndPrint("the end of training for val data"));
  RETURN_IF_ERROR(Save());
  recorder_->SetPhase(coord::RankPhase::kFinished);
  LOG_INFO << "training done at iteration " << iteration_;
  return coord::Status::Ok();
}

ProgressRecord Trainer::ProgressFor(double loss, double ms) const {
  ProgressRecord p;
  p.iteration = iteration_;
  p.loss = loss;
  p.time_ms = ms;
  p.checkpoint = last_saved_iteration_;
  p.train_iters = config_.training.train_iters;
  p.tokens_per_s = ms > 0 ? static_cast<double>(config_.training.global_batch_size) *
                                config_.model.seq_length / (ms / 1000.0)
                          : 0.0;
  p.lr = schedule_->LoggedLrForIteration(iteration_);
  p.stage = groups_->stage();
  p.has_timings = true;
  p.timings = step_timer_.Finish();
  return p;
}

}  // namespace gpt_rank::train
