// Continuous batching: the sequences that are running, and one forward batch per step built
// from all of them. Single-threaded: Engine runs it on its own thread, generate() on the
// caller's. Whatever the batch around a sequence, its tokens are the ones it gets alone (the
// forward pass computes every token's row independently; tests/models/test_engine.cpp checks).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "models/engine/request.h"
#include "models/model.h"

namespace strata::engine {

struct Sequence;

class Scheduler {
 public:
  Scheduler(models::Model& model, const EngineOptions& opts);
  ~Scheduler();

  // The context a request gets: prompt + max_tokens (+1), capped by the per-sequence context;
  // a request without max_tokens takes the whole context, or what the KV budget allows.
  int64_t context_for(const Request& req) const;
  uint64_t kv_bytes_for(int64_t positions) const { return static_cast<uint64_t>(positions) * kv_bytes_per_pos_; }
  // Empty when the request can run at all (alone), else why not (for a 400).
  std::string check(const Request& req) const;
  // A batch slot and KV room for it are free now.
  bool has_room_for(const Request& req) const;
  // Takes the request into the running batch (has_room_for must be true); it starts next step.
  void admit(RequestId id, Request req, Sink sink, double t_submit);
  // Finishes the sequence with Cancelled at the start of the next step.
  void cancel(RequestId id);
  void cancel_all();

  // One forward over every running sequence; sends their events, retires finished ones.
  void step();
  bool idle() const { return seqs_.empty(); }
  int active() const { return static_cast<int>(seqs_.size()); }
  uint64_t kv_reserved() const { return kv_reserved_; }
  uint64_t kv_allocated() const;
  uint64_t steps() const { return steps_; }
  double step_seconds() const { return step_seconds_; }
  double step_cpu_seconds() const { return step_cpu_seconds_; }
  uint64_t batch_tokens() const { return batch_tokens_; }
  uint64_t prompt_tokens() const { return prompt_tokens_; }
  uint64_t generated_tokens() const { return generated_tokens_; }
  uint64_t finished() const { return finished_; }
  uint64_t cancelled() const { return cancelled_; }
  models::Model& model() { return model_; }
  const EngineOptions& options() const { return opts_; }

 private:
  void finish(Sequence& s, FinishReason reason, std::string error = {});
  void retire_finished();
  void sample_for(Sequence& s, const float* logits);

  models::Model& model_;
  EngineOptions opts_;
  uint64_t kv_bytes_per_pos_;
  std::vector<std::unique_ptr<Sequence>> seqs_;  // admission order: prefill budget goes first-come
  uint64_t kv_reserved_ = 0;
  double step_seconds_ = 0, step_cpu_seconds_ = 0;
  uint64_t batch_tokens_ = 0;
  uint64_t steps_ = 0, prompt_tokens_ = 0, generated_tokens_ = 0, finished_ = 0, cancelled_ = 0;
  models::ForwardOutput out_;
};

double now_s();  // steady-clock seconds, the time base of every event

}  // namespace strata::engine
