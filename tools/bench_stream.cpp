#include "tools/bench_stream.h"

#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>

#include "models/model.h"
#include "storage/sequential_read.h"
#include "tools/common.h"

namespace strata::tools {

int run_stream_bench(const StreamBenchArgs& a) {
  auto tc = limit_threads(a.threads);
  // The raw speed first: O_DIRECT leaves nothing in the page cache for the run to profit from.
  storage::SequentialReadResult raw;
  if (a.raw) raw = storage::measure_sequential_read(a.model, a.streaming.io == "mmap" ? "uring" : a.streaming.io);

  auto model = models::Model::load(a.model, load_options(a.streaming));
  const auto& hp = model->hparams();
  std::mt19937 rng(42);
  std::uniform_int_distribution<int32_t> dist(0, static_cast<int32_t>(hp.n_vocab - 1));
  const int B = std::max(1, a.batch);
  std::vector<models::KVCache> kv;
  std::vector<int32_t> tok(static_cast<size_t>(B));
  for (int b = 0; b < B; ++b) {
    kv.push_back(model->new_cache(a.n_gen + 2));
    tok[b] = dist(rng);
  }
  models::ForwardOutput out;
  auto step = [&] {
    std::vector<models::BatchItem> items;
    for (int b = 0; b < B; ++b) items.push_back({&kv[b], std::span<const int32_t>(&tok[b], 1), false});
    model->forward(items, out);
    for (int b = 0; b < B; ++b)
      tok[b] = static_cast<int32_t>(std::max_element(out.row(b), out.row(b) + out.n_vocab) - out.row(b));
  };
  step();  // the first token of each sequence: untimed (it fills the pinned units' neighbours)

  StreamSummary sum;
  sum.before = model->provider().stats();
  const models::RoutingStats r0 = model->routing_stats();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < a.n_gen; ++i) step();
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  sum.after = model->provider().stats();
  sum.routing = model->routing_stats().since(r0);
  sum.tokens = static_cast<int64_t>(a.n_gen) * B;
  sum.peak_rss = peak_rss_bytes();
  for (const auto& c : kv) sum.kv_cache_bytes += c.bytes();

  nlohmann::json j = sum.to_json();
  const double floor = raw.gbps() > 0 ? sum.bytes_per_token() / (raw.gbps() * 1e9) : 0;
  j["model_filename"] = a.model;
  j["n_gen"] = a.n_gen;
  j["batch"] = B;
  j["n_threads"] = static_cast<int>(tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism));
  j["raw_gbps"] = raw.gbps();
  j["raw_bytes"] = raw.bytes;
  j["floor_s_per_token"] = floor;
  j["ratio_to_floor"] = floor > 0 ? sum.tokens_per_s() * floor : 0;
  if (a.json) {
    std::cout << j.dump(1) << "\n";
  } else {
    std::printf("%s\n", sum.line().c_str());
    std::printf("raw sequential read %.2f GB/s -> floor %.3f s/token; achieved %.3f of the floor's speed\n", raw.gbps(),
                floor, j["ratio_to_floor"].get<double>());
  }
  return 0;
}

}  // namespace strata::tools
