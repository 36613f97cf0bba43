// The serving engine: a Scheduler (scheduler.h) run on its own thread, the one owner of
// Model::forward. Request threads (the HTTP server's Asio handlers, the batch runner) submit
// requests and cancel them; events come back through each request's Sink on the engine thread.
#pragma once
#include <memory>

#include "models/engine/request.h"
#include "models/model.h"

namespace strata::engine {

class Scheduler;

class Engine {
 public:
  // The engine thread starts at once and idles until requests arrive.
  Engine(models::Model& model, EngineOptions opts);
  ~Engine();  // stop(0): cancels what is left and joins the thread
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Thread-safe. Accepted requests run when a batch slot and KV room are free (queued until
  // then); refused ones (queue full: 429, never fits: 400) get no events.
  SubmitResult submit(Request req, Sink sink);
  // Thread-safe; the sequence finishes with FinishReason::Cancelled within one step (its KV
  // is freed then). Unknown or finished ids are ignored.
  void cancel(RequestId id);
  EngineStats stats() const;
  const EngineOptions& options() const;

  // Stops taking requests (submit refuses with 503), lets running ones finish until
  // `deadline_s` seconds from now, then cancels the rest; returns when the thread has ended.
  void stop(double deadline_s);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::engine
