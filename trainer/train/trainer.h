// The training loop of one gpt-rank process (Megatron's pretrain()): data (train/valid
// splits of an indexed dataset, Megatron's sample order, the sampler's
// consumed_samples, this data-parallel rank's slice of every global batch), gradient
// accumulation to global_batch_size, the data-parallel reduction and ZeRO stages 1/2
// (data_parallel.h), global norm clipping across ranks, AdamW with Megatron's
// per-iteration lr, evaluation every eval_interval, checkpoints every save_interval
// and at the end (ZeRO: one optimizer shard per rank), exact resume from `load` with
// any number of ranks, and a clear stop on a NaN/inf loss that leaves the last good
// checkpoint. Rank 0 alone writes the log lines, metrics.jsonl, TensorBoard events and
// manifests; every rank reports progress on COORD_PROGRESS_FD. data.format "sft" swaps
// the indexed dataset for a chat set (sft_batches.h: masks, packing, per-token loss).
// Runs on the main thread of a rank; the kernels use OpenMP inside. Not thread-safe,
// except RequestStop, which a signal handler may call.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/flight_record.h"
#include "common/status.h"
#include "trainer/checkpoint/megatron_checkpoint.h"
#include "trainer/checkpoint/tp_checkpoint.h"
#include "trainer/data/data_sampler.h"
#include "trainer/data/gpt_dataset.h"
#include "trainer/data/indexed_dataset.h"
#include "trainer/data/tokenizer.h"
#include "trainer/dist/communicator.h"
#include "trainer/dist/store.h"
#include "trainer/dist/timed_communicator.h"
#include "trainer/optim/lr_schedule.h"
#include "trainer/train/fault_injection.h"
#include "trainer/train/model_shard.h"
#include "trainer/train/parallel_groups.h"
#include "trainer/train/sft_batches.h"
#include "trainer/train/metrics.h"
#include "trainer/train/tensorboard_log.h"
#include "trainer/train/step_timer.h"
#include "trainer/train/trainer_config.h"

namespace trainer {
class LossScaler;
}  // namespace trainer

namespace gpt_rank::train {

// The dataset behind data.data_path, or data.train_data preprocessed (once, keyed by
// the input's path, size and mtime and the tokenizer files) into data.cache_dir.
coord::StatusOr<std::unique_ptr<trainer::data::IndexedDataset>> OpenTrainingData(
    const DataConfig& data, trainer::data::Tokenizer* tokenizer);

class Trainer {
 public:
  // Loads the tokenizer and data, builds the model (Megatron init or the checkpoint
  // in training.load), the optimizer and the schedule. Config and data problems are
  // InvalidArgument / NotFound / FailedPrecondition. `groups` connect the ranks
  // (config.parallel.world_size of them, in the tensor x data grid of
  // parallel_groups.h; not owned, must outlive the trainer); null for a single process.
  // With training.device "cuda" the model, gradients and optimizer live on GPU
  // parallel.local_rank; data-parallel gradients are reduced over NCCL, set up through
  // `store` (the process group's; null for a single process). The world communicator
  // still carries the small host-side collectives (losses, agreement, checkpoints).
  static coord::StatusOr<std::unique_ptr<Trainer>> Create(const TrainerConfig& config,
                                                          ParallelGroups* groups = nullptr,
                                                          dist::KeyValueStore* store = nullptr);
  ~Trainer();

  // Trains from the current iteration to train_iters. Aborted on a NaN/inf loss or
  // grad norm (naming the iteration), Cancelled after RequestStop, else I/O errors.
  coord::Status Run();

  // Async-signal-safe: the loop stops before the next micro-batch.
  static void RequestStop();

  int64_t iteration() const { return iteration_; }

 private:
  explicit Trainer(const TrainerConfig& config);
  coord::Status Setup(ParallelGroups* groups, dist::KeyValueStore* store);
  // Micro-batch m of the iteration starting at `consumed` samples of the training or
  // validation split, loaded into inputs_/targets_ or by sft_ (training: Cancelled
  // once a stop is requested).
  MicroBatchLoader Loader(bool valid, int64_t consumed, bool training);
  // Mean of a per-rank value over the ranks (losses for the log).
  coord::StatusOr<double> MeanOverRanks(double value);
  coord::Status SetupData();
  coord::Status SetupSftData();  // data.format "sft"

  coord::Status Resume();
  // This rank's place in the tensor x pipeline grid, for checkpoints.
  trainer::ModelLayout ModelLayout() const;
  // Fills inputs_/targets_ (B, T) with the micro-batch of these dataset indices.
  coord::Status LoadBatch(const trainer::data::GptDataset& ds, const std::vector<int64_t>& idx);
  // One iteration: accumulate over micro-batches, clip, AdamW. *loss = mean loss.
  coord::Status TrainStep(double* loss, double* grad_norm);
  coord::StatusOr<double> Evaluate();
  coord::Status EvaluateAndPrint(const std::string& prefix);
  coord::Status Save();
  coord::Status SaveSharded(const trainer::TrainState& s, const HostState& host);
  // The same outcome on every rank: `local` if it failed here, else an error naming
  // the first rank where `what` failed, else Ok.
  coord::Status Agree(const coord::Status& local, const std::string& what);
  std::string LastCheckpointText() const;
  // The progress record of the iteration just done (ms: its wall time).
  ProgressRecord ProgressFor(double loss, double ms) const;
  // Timed (and flight-recorded) views of `groups`, which groups_ then points to.
  void WrapGroups(ParallelGroups* groups);
  bool is_root() const { return comm_->rank() == 0; }

  TrainerConfig config_;
  std::unique_ptr<dist::Communicator> own_comm_;  // world of one
  ParallelGroups own_groups_;                     // world of one
  ParallelGroups* groups_ = nullptr;
  // Where this rank is and its last collectives, for hang reports (COORD_FLIGHT_RECORD;
  // in memory only when unset). Before the communicators that record into it.
  std::unique_ptr<coord::FlightRecorder> recorder_;
  // The groups as the model sees them: timed (the tp-comm / dp-comm timers of the log,
  // the step's wait) and flight-recorded.
  std::unique_ptr<dist::TimedCommunicator> tp_timed_, dp_timed_, pp_timed_, world_timed_,
      embedding_timed_;
  ParallelGroups timed_groups_;
  dist::Communicator* comm_ = nullptr;     // the world: agreement, logs, saves
  dist::Communicator* dp_comm_ = nullptr;  // the data-parallel group: samples, gradients
  int64_t num_micro_batches_ = 1;  // gbs / (mbs * dp)
  std::unique_ptr<trainer::data::Tokenizer> tokenizer_;
  std::unique_ptr<trainer::data::IndexedDataset> dataset_;
  std::unique_ptr<trainer::data::GptDataset> train_ds_, valid_ds_;  // valid_ds_ may be null
  std::unique_ptr<trainer::data::PretrainingSampler> train_sampler_, valid_sampler_;
  std::unique_ptr<SftBatches> sft_;  // data.format "sft" instead of the datasets above
  std::unique_ptr<ModelShard> shard_;            // the model on training.device
  std::unique_ptr<trainer::LossScaler> scaler_;  // fp16 only
  FaultInjection inject_;                        // GPT_RANK_INJECT_* (tests, benchmarks)
  std::atomic<int64_t> in_progress_{0};          // the iteration running (the reducer thread reads it)
  std::atomic<bool> hang_injected_{false};
  StepTimer step_timer_;
  int64_t skipped_iterations_ = 0;               // fp16 overflows since the last log line
  std::unique_ptr<trainer::LrSchedule> schedule_;
  std::unique_ptr<MetricsSink> metrics_;
  std::unique_ptr<TensorBoardLog> tensorboard_;  // rank 0, with training.tensorboard_dir
  std::vector<int> inputs_, targets_;  // (B, T) of the current micro-batch
  std::vector<int32_t> sample_;        // (T + 1) scratch

  // Training state; all of it is in the checkpoint (TrainState).
  int64_t iteration_ = 0;  // completed iterations
  int64_t consumed_train_samples_ = 0;
  int64_t consumed_valid_samples_ = 0;
  int64_t last_saved_iteration_ = -1;  // -1: none saved or loaded in this save dir
  // Timers since the last log line (seconds, summed over iterations).
  double forward_backward_s_ = 0.0, optimizer_s_ = 0.0;
};

}  // namespace gpt_rank::train
