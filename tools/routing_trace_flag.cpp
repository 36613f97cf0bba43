#include "tools/routing_trace_flag.h"

#include <cstdio>

#include "storage/error.h"

namespace strata::tools {

void add_trace_routing_flag(CLI::App* cmd, std::string& path) {
  cmd->add_option("--trace-routing", path,
                  "Write every MoE layer's chosen experts per token and forward step to this file (JSON lines; "
                  "replay it with strata cachesim)");
}

RoutingTraceRecorder::RoutingTraceRecorder(models::Model& model, const std::string& path) : model_(model) {
  if (path.empty()) return;
  const models::HParams& hp = model.hparams();
  if (hp.n_expert == 0)
    fail("--trace-routing {}: the model is dense ({} has no experts), so there is no routing to trace", path,
         model.file().paths().front());
  writer_ = std::make_unique<runtime::RoutingTraceWriter>(
      path, runtime::RoutingTraceHeader{hp.n_layer, hp.n_expert, hp.n_expert_used});
  runtime::RoutingTraceWriter* w = writer_.get();
  model.set_routing_observer([w](int64_t layer, int64_t n_tokens, int64_t n_used, const int32_t* experts) {
    w->record(layer, n_tokens, n_used, experts);
  });
}

RoutingTraceRecorder::~RoutingTraceRecorder() {
  if (writer_) model_.set_routing_observer({});
}

void RoutingTraceRecorder::finish() {
  if (!writer_) return;
  model_.set_routing_observer({});
  writer_->close();
  std::fprintf(stderr, "routing trace: %s (%lld forward steps)\n", writer_->path().c_str(),
               static_cast<long long>(writer_->steps()));
  writer_.reset();
}

}  // namespace strata::tools
