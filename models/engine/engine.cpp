#include "models/engine/engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "models/engine/scheduler.h"

namespace strata::engine {

struct Engine::Impl {
  struct Pending {
    RequestId id;
    Request req;
    Sink sink;
    double t_submit;
  };

  Impl(models::Model& model, const EngineOptions& opts) : sched(model, opts) {}

  Scheduler sched;
  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<Pending> queue;
  std::vector<RequestId> cancels;
  RequestId next_id = 1;
  bool stopping = false;
  double deadline = 0;
  EngineStats snapshot;
  uint64_t rejected = 0;
  std::thread thread;

  // Refuses what is left in the queue (outside the lock: sinks run user code).
  static void cancel_pending(std::deque<Pending>& gone) {
    for (Pending& p : gone) {
      FinishEvent f;
      f.reason = FinishReason::Cancelled;
      f.prompt_tokens = static_cast<int64_t>(p.req.prompt.size());
      f.t_submit = p.t_submit;
      f.t_end = now_s();
      if (p.sink.on_finish) p.sink.on_finish(f);
    }
  }

  void take_snapshot() {  // under mu
    snapshot.active = sched.active();
    snapshot.queued = static_cast<int>(queue.size());
    snapshot.kv_bytes = sched.kv_allocated();
    snapshot.kv_reserved = sched.kv_reserved();
    snapshot.kv_budget = sched.options().kv_budget;
    snapshot.steps = sched.steps();
    snapshot.step_seconds = sched.step_seconds();
    snapshot.step_cpu_seconds = sched.step_cpu_seconds();
    snapshot.batch_tokens = sched.batch_tokens();
    snapshot.prompt_tokens = sched.prompt_tokens();
    snapshot.generated_tokens = sched.generated_tokens();
    snapshot.requests_finished = sched.finished();
    snapshot.requests_cancelled = sched.cancelled();
    snapshot.requests_rejected = rejected;
  }

  void loop() {
    for (;;) {
      std::deque<Pending> dropped;
      {
        std::unique_lock<std::mutex> lk(mu);
        for (RequestId id : cancels) {
          auto it = std::find_if(queue.begin(), queue.end(), [&](const Pending& p) { return p.id == id; });
          if (it != queue.end()) {
            dropped.push_back(std::move(*it));
            queue.erase(it);
          } else {
            sched.cancel(id);
          }
        }
        cancels.clear();
        if (stopping) {
          // Nothing new starts; running sequences get until the deadline to finish.
          while (!queue.empty()) {
            dropped.push_back(std::move(queue.front()));
            queue.pop_front();
          }
          if (now_s() >= deadline) sched.cancel_all();
        }
        while (!queue.empty() && sched.has_room_for(queue.front().req)) {
          Pending p = std::move(queue.front());
          queue.pop_front();
          sched.admit(p.id, std::move(p.req), std::move(p.sink), p.t_submit);
        }
        snapshot.provider = sched.model().provider().stats();
        take_snapshot();
        if (sched.idle() && dropped.empty()) {
          if (stopping) return;
          cv.wait(lk, [&] { return stopping || !queue.empty() || !cancels.empty(); });
          continue;
        }
      }
      cancel_pending(dropped);
      sched.step();
    }
  }
};

Engine::Engine(models::Model& model, EngineOptions opts) : impl_(std::make_unique<Impl>(model, opts)) {
  impl_->take_snapshot();
  impl_->thread = std::thread([this] { impl_->loop(); });
}

Engine::~Engine() { stop(0); }

SubmitResult Engine::submit(Request req, Sink sink) {
  SubmitResult r;
  // check() reads only immutable options and the model: safe outside the engine thread.
  if (std::string why = impl_->sched.check(req); !why.empty()) {
    r.http_status = 400;
    r.error = why;
    return r;
  }
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    if (impl_->stopping) {
      r.http_status = 503;
      r.error = "the server is shutting down";
      return r;
    }
    if (impl_->queue.size() >= impl_->sched.options().max_queue) {
      ++impl_->rejected;
      r.http_status = 429;
      r.error = fmt::format("all {} batch slots are busy and {} requests are waiting; try again later",
                            impl_->sched.options().max_batch, impl_->queue.size());
      r.retry_after_s = 1 + static_cast<int>(impl_->queue.size() / static_cast<size_t>(impl_->sched.options().max_batch));
      return r;
    }
    r.accepted = true;
    r.id = impl_->next_id++;
    impl_->queue.push_back({r.id, std::move(req), std::move(sink), now_s()});
    impl_->snapshot.queued = static_cast<int>(impl_->queue.size());
  }
  impl_->cv.notify_one();
  return r;
}

void Engine::cancel(RequestId id) {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->cancels.push_back(id);
  }
  impl_->cv.notify_one();
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->snapshot;
}

const EngineOptions& Engine::options() const { return impl_->sched.options(); }

void Engine::stop(double deadline_s) {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    if (!impl_->stopping) {
      impl_->stopping = true;
      impl_->deadline = now_s() + std::max(0.0, deadline_s);
    } else {
      impl_->deadline = std::min(impl_->deadline, now_s() + std::max(0.0, deadline_s));
    }
  }
  impl_->cv.notify_one();
  if (impl_->thread.joinable() && impl_->thread.get_id() != std::this_thread::get_id()) impl_->thread.join();
}

}  // namespace strata::engine
