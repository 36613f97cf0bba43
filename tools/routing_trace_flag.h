// `--trace-routing FILE` for the commands that run a model (run, bench): every MoE layer's expert
// choice for every token of every forward step, written in runtime/routing_trace.h's format for
// `strata cachesim` to replay.
#pragma once
#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "models/model.h"
#include "runtime/routing_trace.h"

namespace strata::tools {

void add_trace_routing_flag(CLI::App* cmd, std::string& path);

// Records a model's routing into a trace file while it lives (nothing when the path is empty).
class RoutingTraceRecorder {
 public:
  // Creates the file; strata::Error when the model has no experts or the file cannot be made.
  RoutingTraceRecorder(models::Model& model, const std::string& path);
  ~RoutingTraceRecorder();  // stops observing (the model may outlive the recorder)
  RoutingTraceRecorder(const RoutingTraceRecorder&) = delete;
  RoutingTraceRecorder& operator=(const RoutingTraceRecorder&) = delete;

  // Stops observing, closes the file (strata::Error if a write failed) and says on stderr
  // where the trace went and how many forward steps it holds.
  void finish();

 private:
  models::Model& model_;
  std::unique_ptr<runtime::RoutingTraceWriter> writer_;
};

}  // namespace strata::tools
