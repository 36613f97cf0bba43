#include "tools/bench_stream.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "models/model.h"
#include "runtime/weight_provider.h"
#include "storage/error.h"
#include "storage/sequential_read.h"
#include "tools/common.h"
#include "tools/progress.h"
#include "tools/routing_trace_flag.h"
#include "tools/units.h"

namespace strata::tools {
namespace {

// B sequences, each with its own cache, stepped one token at a time in one batch.
struct DecodeBatch {
  std::vector<models::KVCache> kv;
  std::vector<int32_t> tok;
  DecodeBatch(const models::Model& model, int B, int max_ctx, std::mt19937& rng) {
    std::uniform_int_distribution<int32_t> dist(0, static_cast<int32_t>(model.hparams().n_vocab - 1));
    for (int b = 0; b < B; ++b) {
      kv.push_back(model.new_cache(max_ctx));
      tok.push_back(dist(rng));
    }
  }
  void step(models::Model& model, models::ForwardOutput& out) {
    std::vector<models::BatchItem> items;
    for (size_t b = 0; b < kv.size(); ++b) items.push_back({&kv[b], std::span<const int32_t>(&tok[b], 1), false});
    model.forward(items, out);
    for (size_t b = 0; b < kv.size(); ++b)
      tok[b] = static_cast<int32_t>(std::max_element(out.row(b), out.row(b) + out.n_vocab) - out.row(b));
  }
  uint64_t kv_bytes() const {
    uint64_t n = 0;
    for (const auto& c : kv) n += c.bytes();
    return n;
  }
};

struct DecodeTest {
  int batch, n_gen, reps, n_threads;
};

struct RawSpeeds {
  // The unit pattern is read before and after the decode tests: this machine's disk drifts by
  // tens of percent within minutes, and the mean of the two is the fairest figure for the run
  // between them (both are reported).
  storage::SequentialReadResult sequential, units, units_after;
  double compute_s_per_token = 0;
  double unit_gbps() const {
    const double a = units.gbps(), b = units_after.gbps();
    return a > 0 && b > 0 ? (a + b) / 2 : a > 0 ? a : b > 0 ? b : sequential.gbps();
  }
};

// The floor: the time to read one token's bytes at the speed the drive gives for this pattern;
// the roofline adds the CPU's limit, the all-resident compute time per token.
void add_floor(BenchRow& row, const RawSpeeds& raw) {
  const double bytes_per_token = row["bytes_read_per_token"].get<double>();
  const double tokens_per_s = row["tokens_per_s"].get<double>();
  const double unit_gbps = raw.unit_gbps();
  const double floor = unit_gbps > 0 ? bytes_per_token / (unit_gbps * 1e9) : 0;
  const double floor_seq = raw.sequential.gbps() > 0 ? bytes_per_token / (raw.sequential.gbps() * 1e9) : 0;
  row["raw_gbps"] = raw.sequential.gbps();
  row["raw_bytes"] = raw.sequential.bytes;
  row["raw_unit_gbps"] = unit_gbps;
  row["raw_unit_gbps_before"] = raw.units.gbps();
  row["raw_unit_gbps_after"] = raw.units_after.gbps();
  row["raw_unit_bytes"] = raw.units.bytes + raw.units_after.bytes;
  row["floor_s_per_token"] = floor;
  row["floor_seq_s_per_token"] = floor_seq;
  row["ratio_to_floor"] = floor > 0 ? tokens_per_s * floor : 0;
  if (raw.compute_s_per_token > 0) {
    const double roof = std::max(floor, raw.compute_s_per_token);
    row["compute_s_per_token"] = raw.compute_s_per_token;
    row["roofline_s_per_token"] = roof;
    row["ratio_to_roofline"] = tokens_per_s * roof;
  } else {
    row["compute_s_per_token"] = nullptr;
    row["roofline_s_per_token"] = nullptr;
    row["ratio_to_roofline"] = nullptr;
  }
}

// The streamed units' file extents in random order, until about `target` bytes: the pattern a
// streamed decode reads (whole units, spread over the file).
std::vector<storage::ReadExtent> unit_extents(runtime::WeightProvider& p, uint64_t target) {
  std::vector<runtime::UnitId> ids;
  for (runtime::UnitId id = 0; id < p.unit_count(); ++id)
    if (p.unit(id).kind != runtime::UnitKind::Pinned) ids.push_back(id);
  std::mt19937 rng(7);
  std::shuffle(ids.begin(), ids.end(), rng);
  std::vector<storage::ReadExtent> out;
  uint64_t total = 0;
  for (runtime::UnitId id : ids) {
    for (const runtime::FileRange& r : p.unit(id).ranges) out.push_back({r.file, r.offset, r.length});
    total += p.unit(id).bytes();
    if (total >= target) break;
  }
  return out;
}

BenchRow decode_test(models::Model& model, const BenchModel& info, const DecodeTest& t, Progress& bar) {
  BenchRow row = bench_row(info, t.batch, t.n_threads, 0, t.n_gen);
  std::mt19937 rng(42);
  models::ForwardOutput out;
  {
    // Untimed: the first step after a change of batch or threads pays for filling the pool
    // around the pinned units; llama-bench also warms up before each test.
    DecodeBatch warm(model, t.batch, 2, rng);
    warm.step(model, out);
  }

  // The repetitions run back to back with nothing read between them, so the provider's
  // counters across the whole span are the timed steps' own.
  StreamSummary sum;
  sum.before = model.provider().stats();
  const models::RoutingStats r0 = model.routing_stats();
  std::vector<uint64_t> samples_ns;
  for (int r = 0; r < t.reps; ++r) {
    DecodeBatch d(model, t.batch, t.n_gen + 1, rng);
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < t.n_gen; ++i) d.step(model, out);
    const auto dt = std::chrono::steady_clock::now() - t0;
    samples_ns.push_back(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(dt).count()));
    sum.kv_cache_bytes = d.kv_bytes();
    bar.add(1);
  }
  sum.after = model.provider().stats();
  sum.routing = model.routing_stats().since(r0);
  for (uint64_t ns : samples_ns) sum.seconds += double(ns) / 1e9;
  sum.tokens = static_cast<int64_t>(t.n_gen) * t.batch * t.reps;
  sum.peak_rss = peak_rss_bytes();

  add_timing(row, static_cast<int64_t>(t.n_gen) * t.batch, samples_ns);
  const nlohmann::json streaming = sum.to_json();
  for (const auto& [k, v] : streaming.items()) row[k] = v;
  return row;
}

}  // namespace

BenchReport run_stream_bench(const StreamBenchArgs& a) {
  check_streaming_flags(a.streaming);
  const int n_tests = static_cast<int>(std::count_if(a.n_gen.begin(), a.n_gen.end(), [](int n) { return n > 0; }));
  if (n_tests == 0) fail("-n/--n-gen: the streamed bench measures decode; give at least one count above 0");

  // The raw speeds first: O_DIRECT leaves nothing in the page cache for the run to profit from.
  const std::string raw_io = a.streaming.io == "mmap" ? "uring" : a.streaming.io;
  RawSpeeds raw;
  raw.compute_s_per_token = a.compute_s_per_token;
  if (a.raw) raw.sequential = storage::measure_sequential_read(a.model, raw_io);

  auto model = load_model(a.model, a.streaming);
  // Up to 2 GiB of whole units (a few seconds), at the queue depth the provider reads with.
  const auto extents = a.raw ? unit_extents(model->provider(), 2ull << 30) : std::vector<storage::ReadExtent>{};
  auto measure_units = [&] {
    return storage::measure_extent_read(model->file().paths(), extents, raw_io, 1 << 20, a.streaming.queue_depth);
  };
  if (a.raw) raw.units = measure_units();
  const BenchModel info = describe_bench_model(a.model, model->file());
  RoutingTraceRecorder trace(*model, a.trace_routing);
  const uint64_t runs = uint64_t(n_tests) * a.threads.size() * a.batch.size() * uint64_t(a.reps);
  Progress bar("bench", runs, Progress::Unit::Items, "runs");
  BenchReport report;
  for (int threads : a.threads) {
    // One limit at a time: oneTBB applies the smallest of those alive.
    auto tc = limit_threads(threads);
    const int n_threads =
        static_cast<int>(tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism));
    for (int batch : a.batch)
      for (int n : a.n_gen)
        if (n > 0) report.rows.push_back(decode_test(*model, info, {batch, n, a.reps, n_threads}, bar));
  }
  bar.finish();
  if (a.raw) raw.units_after = measure_units();
  for (BenchRow& row : report.rows) add_floor(row, raw);
  trace.finish();
  if (a.raw)
    report.notes.push_back(fmt::format(
        "raw O_DIRECT reads ({}): sequential {} at {}; the run's pattern (whole units, random order) {} at {} "
        "before the tests and {} after; floor = bytes read per token / the mean pattern speed{}",
        raw_io, format_bytes(double(raw.sequential.bytes)), format_rate(raw.sequential.gbps() * 1e9),
        format_bytes(double(raw.units.bytes)), format_rate(raw.units.gbps() * 1e9),
        format_rate(raw.units_after.gbps() * 1e9),
        a.compute_s_per_token > 0 ? "; roofline = max(floor, resident compute per token)" : ""));
  return report;
}

}  // namespace strata::tools
