#include "tools/iobench_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <tuple>

#include "tools/units.h"

namespace strata::tools {
namespace {

using json = nlohmann::ordered_json;
using storage::IoJobResult;
using storage::IoPattern;

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

json lat_json(const storage::LatencyStats& l) {
  return {{"min", l.min}, {"max", l.max}, {"mean", l.mean}, {"stddev", l.stddev}, {"N", l.n}};
}

struct SampleStats {
  double min = 0, max = 0, mean = 0, dev = 0;
  size_t n = 0;
};
SampleStats sample_stats(const std::vector<double>& v) {
  SampleStats s;
  s.n = v.size();
  if (v.empty()) return s;
  s.min = *std::min_element(v.begin(), v.end());
  s.max = *std::max_element(v.begin(), v.end());
  for (double x : v) s.mean += x / double(v.size());
  for (double x : v) s.dev += (x - s.mean) * (x - s.mean);
  s.dev = v.size() > 1 ? std::sqrt(s.dev / double(v.size() - 1)) : 0;
  return s;
}

// fio's read/write/trim object. r == nullptr: the all-zero one fio prints for idle directions.
json direction_json(const IoJobResult* r, double group_bw) {
  const storage::LatencyStats zero;
  const storage::LatencyStats c = r ? r->clat() : zero;
  json d = {{"io_bytes", r ? r->bytes : 0},
            {"io_kbytes", r ? r->bytes / 1024 : 0},
            {"bw_bytes", r ? uint64_t(std::llround(r->bw())) : 0},
            {"bw", r ? uint64_t(std::llround(r->bw() / 1024)) : 0},
            {"iops", r ? r->iops() : 0.0},
            {"runtime", r ? uint64_t(std::llround(r->seconds * 1e3)) : 0},
            {"total_ios", r ? r->ios : 0},
            {"short_ios", r ? r->short_ios : 0},
            {"drop_ios", 0},
            {"slat_ns", lat_json(zero)},  // submission is inside clat: timed from before submit()
            {"clat_ns", lat_json(c)}};
  if (r) {
    json pct = json::object();
    for (double p : storage::fio_percentiles()) pct[fmt::format("{:.6f}", p)] = r->clat_percentile(p);
    d["clat_ns"]["percentile"] = pct;
  }
  d["lat_ns"] = lat_json(c);
  std::vector<double> bw_kib;
  if (r) for (double b : r->bw_samples) bw_kib.push_back(b / 1024);
  const SampleStats bw = sample_stats(bw_kib), io = sample_stats(r ? r->iops_samples : std::vector<double>{});
  d["bw_min"] = uint64_t(std::llround(bw.min));
  d["bw_max"] = uint64_t(std::llround(bw.max));
  d["bw_agg"] = r && group_bw > 0 ? 100.0 * r->bw() / group_bw : 0.0;
  d["bw_mean"] = bw.mean;
  d["bw_dev"] = bw.dev;
  d["bw_samples"] = bw.n;
  d["iops_min"] = uint64_t(std::llround(io.min));
  d["iops_max"] = uint64_t(std::llround(io.max));
  d["iops_mean"] = io.mean;
  d["iops_stddev"] = io.dev;
  d["iops_samples"] = io.n;
  return d;
}

// Share (percent) of reads whose latency falls in each of fio's latency_ns/us/ms buckets.
void latency_buckets(const IoJobResult& r, json& job) {
  const std::vector<std::string> keys = {"2", "4", "10", "20", "50", "100", "250", "500", "750", "1000"};
  const std::vector<double> bounds = {2, 4, 10, 20, 50, 100, 250, 500, 750, 1000};
  std::vector<double> ns(10), us(10), ms(12);
  const double n = double(std::max<size_t>(1, r.clat_ns.size()));
  auto put = [&](std::vector<double>& t, double v) {
    for (size_t i = 0; i < bounds.size(); ++i)
      if (v <= bounds[i]) return void(t[i] += 100 / n);
    t.back() += 100 / n;
  };
  for (uint64_t v : r.clat_ns) {
    if (v < 1000) put(ns, double(v));
    else if (v < 1000000) put(us, double(v) / 1e3);
    else if (double(v) / 1e6 <= 1000) put(ms, double(v) / 1e6);
    else ms[double(v) / 1e6 <= 2000 ? 10 : 11] += 100 / n;
  }
  json jn, ju, jm;
  for (size_t i = 0; i < keys.size(); ++i) jn[keys[i]] = ns[i], ju[keys[i]] = us[i], jm[keys[i]] = ms[i];
  jm["2000"] = ms[10];
  jm[">=2000"] = ms[11];
  job["latency_ns"] = jn;
  job["latency_us"] = ju;
  job["latency_ms"] = jm;
}

}  // namespace

std::string latency_label(uint64_t ns) {
  if (ns < 1000000) return fmt::format("{:.0f} us", double(ns) / 1e3);
  return fmt::format("{:.1f} ms", double(ns) / 1e6);
}

std::string size_label(uint64_t b) {
  if (b % (1 << 30) == 0) return fmt::format("{}G", b >> 30);
  if (b % (1 << 20) == 0) return fmt::format("{}M", b >> 20);
  if (b % (1 << 10) == 0) return fmt::format("{}K", b >> 10);
  return std::to_string(b);
}

json fio_job_json(const IoJobResult& r, const std::string& name, int group, double group_bw, double runtime_opt) {
  const unsigned qd = r.spec.queue_depth;
  json j = {{"jobname", name}, {"groupid", group}, {"error", 0}, {"eta", 0},
            {"elapsed", int64_t(std::ceil(r.seconds))}};
  j["job options"] = {{"name", name},          {"filename", r.spec.path},
                      {"rw", storage::io_pattern_name(r.spec.pattern)},
                      {"bs", lower(size_label(r.spec.block_size))},
                      {"iodepth", std::to_string(qd)}, {"ioengine", "strata-" + r.backend},
                      {"direct", "1"},         {"runtime", fmt::format("{}", runtime_opt)}};
  j["read"] = direction_json(&r, group_bw);
  j["write"] = direction_json(nullptr, 0);
  j["trim"] = direction_json(nullptr, 0);
  j["sync"] = {{"total_ios", 0}, {"lat_ns", lat_json({})}};
  j["job_runtime"] = uint64_t(std::llround(r.seconds * 1e3));
  j["usr_cpu"] = r.seconds > 0 ? 100 * r.usr_s / r.seconds : 0.0;
  j["sys_cpu"] = r.seconds > 0 ? 100 * r.sys_s / r.seconds : 0.0;
  j["ctx"] = r.ctx;
  j["majf"] = r.majf;
  j["minf"] = r.minf;
  const char* levels[] = {"1", "2", "4", "8", "16", "32", ">=64"};
  json lv;
  for (int i = 0; i < 7; ++i) lv[levels[i]] = (qd >= (1u << i) && (i == 6 || qd < (2u << i))) ? 100.0 : 0.0;
  j["iodepth_level"] = lv;
  const char* batches[] = {"0", "4", "8", "16", "32", "64", ">=64"};
  uint64_t ns = 0, nc = 0;
  for (int i = 0; i < 7; ++i) ns += r.submit_batches[i], nc += r.complete_batches[i];
  json sub, com;
  for (int i = 0; i < 7; ++i) {
    sub[batches[i]] = ns ? 100.0 * double(r.submit_batches[i]) / double(ns) : 0.0;
    com[batches[i]] = nc ? 100.0 * double(r.complete_batches[i]) / double(nc) : 0.0;
  }
  j["iodepth_submit"] = sub;
  j["iodepth_complete"] = com;
  latency_buckets(r, j);
  j["latency_depth"] = qd;
  j["latency_target"] = 0;
  j["latency_percentile"] = 100.0;
  j["latency_window"] = 0;
  j["strata"] = {{"backend", r.backend},      {"file_size", r.file_size},     {"block_size", r.spec.block_size},
                 {"seconds", r.seconds},      {"chunks", r.stats.chunks},     {"fixed_chunks", r.stats.fixed_chunks},
                 {"retries", r.stats.retries}};
  return j;
}

IoJobResult aggregate_jobs(const std::vector<IoJobResult>& rs) {
  IoJobResult a = rs.front();
  a.clat_ns.clear();
  a.bytes = a.ios = a.short_ios = a.ctx = a.majf = a.minf = 0;
  a.seconds = a.usr_s = a.sys_s = 0;
  size_t samples = SIZE_MAX;
  for (const IoJobResult& r : rs) samples = std::min(samples, r.bw_samples.size());
  a.bw_samples.assign(samples, 0);
  a.iops_samples.assign(samples, 0);
  std::string paths;
  for (const IoJobResult& r : rs) {
    paths += (paths.empty() ? "" : ":") + r.spec.path;  // fio joins several files with ':'
    a.bytes += r.bytes, a.ios += r.ios, a.short_ios += r.short_ios;
    a.seconds = std::max(a.seconds, r.seconds);
    a.usr_s += r.usr_s, a.sys_s += r.sys_s, a.ctx += r.ctx, a.majf += r.majf, a.minf += r.minf;
    a.clat_ns.insert(a.clat_ns.end(), r.clat_ns.begin(), r.clat_ns.end());
    for (size_t i = 0; i < samples; ++i) a.bw_samples[i] += r.bw_samples[i], a.iops_samples[i] += r.iops_samples[i];
  }
  for (size_t i = 1; i < rs.size(); ++i)
    for (int b = 0; b < 7; ++b)
      a.submit_batches[b] += rs[i].submit_batches[b], a.complete_batches[b] += rs[i].complete_batches[b];
  std::sort(a.clat_ns.begin(), a.clat_ns.end());
  a.spec.path = paths;
  return a;
}

IoBenchRow make_row(const IoJobResult& r, int drive, bool together, json job) {
  return {drive, together, r.spec.pattern, r.spec.block_size, r.spec.queue_depth, r.bw(), r.iops(),
          r.clat_percentile(50), r.clat_percentile(99), std::move(job)};
}

namespace {

// The fastest of the drive's own (not together) rows that match.
template <typename Pred>
const IoBenchRow* best(const std::vector<IoBenchRow>& rows, int drive, bool together, Pred pred) {
  const IoBenchRow* b = nullptr;
  for (const IoBenchRow& r : rows)
    if (r.drive == drive && r.together == together && pred(r) && (!b || r.bw > b->bw)) b = &r;
  return b;
}

bool is_unit(const std::vector<uint64_t>& units, uint64_t bs) {
  return std::find(units.begin(), units.end(), bs) != units.end();
}

// What the drive is read at when streaming: the model's largest unit, else 1 MiB, else the
// largest block size measured.
uint64_t headline_bs(const std::vector<IoBenchRow>& rows, const std::vector<uint64_t>& units) {
  if (!units.empty()) return *std::max_element(units.begin(), units.end());
  uint64_t largest = 0;
  for (const IoBenchRow& r : rows) {
    if (r.bs == (1u << 20)) return r.bs;
    largest = std::max(largest, r.bs);
  }
  return largest;
}

}  // namespace

json drive_profile(const std::vector<IoBenchRow>& rows, size_t n_drives, const std::vector<uint64_t>& units,
                   bool together_run, const std::string& io) {
  char created[32];
  const std::time_t t = std::time(nullptr);
  std::strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  json p = {{"format", "strata-drive-profile"}, {"version", 1}, {"created", created}, {"io", io}};
  json drives = json::array();
  uint64_t largest = 0;
  for (const IoBenchRow& r : rows) largest = std::max(largest, r.bs);
  double alone_sum = 0;
  for (int d = 0; d < int(n_drives); ++d) {
    const auto rand = [](const IoBenchRow& r) { return r.rw == IoPattern::random; };
    const auto seq = [](const IoBenchRow& r) { return r.rw == IoPattern::sequential; };
    // The streaming figure: random reads of 1 MiB or more, or of the model's units.
    const IoBenchRow* read = best(rows, d, false, [&](const IoBenchRow& r) {
      return rand(r) && (r.bs >= (1u << 20) || is_unit(units, r.bs));
    });
    if (!read) read = best(rows, d, false, rand);
    if (!read) read = best(rows, d, false, seq);
    const IoBenchRow* s = best(rows, d, false, seq);
    // Latency: the median of 4 KiB random reads at depth 1, else of the smallest random reads at
    // the lowest depth measured (sequential ones when there are no random reads).
    const IoBenchRow* lat = nullptr;
    for (const IoBenchRow& r : rows) {
      if (r.drive != d || r.together) continue;
      const auto key = [&](const IoBenchRow& x) { return std::tuple(!rand(x), x.qd, x.bs); };
      if (!lat || key(r) < key(*lat)) lat = &r;
    }
    json rg = json::object();
    for (const IoBenchRow& r : rows)
      if (r.drive == d && !r.together && rand(r)) {
        const std::string k = std::to_string(r.bs);
        if (!rg.contains(k) || rg[k].get<double>() < r.bw / 1e9) rg[k] = r.bw / 1e9;
      }
    const IoBenchRow* at_largest = best(rows, d, false, [&](const IoBenchRow& r) { return rand(r) && r.bs == largest; });
    alone_sum += at_largest ? at_largest->bw : 0;
    json j = {{"path", ""},
              {"read_gbps", read ? read->bw / 1e9 : 0.0},
              {"seq_read_gbps", s ? json(s->bw / 1e9) : json(nullptr)},
              {"latency_us", lat ? double(lat->p50) / 1e3 : 0.0},
              {"latency_bs", lat ? lat->bs : 0},
              {"latency_qd", lat ? lat->qd : 0},
              {"queue_depth", read ? read->qd : 0},
              {"read_bs", read ? read->bs : 0},
              {"rand_gbps", rg}};
    drives.push_back(j);
  }
  p["drives"] = drives;
  const IoBenchRow* all = best(rows, -1, true, [&](const IoBenchRow& r) { return r.rw == IoPattern::random && r.bs == largest; });
  // Measured when the drives ran together; else the sum of each drive alone (one drive: itself).
  p["together_gbps"] = all ? all->bw / 1e9 : alone_sum / 1e9;
  p["together_measured"] = all != nullptr || n_drives == 1;
  return p;
}

void print_iobench_table(const std::vector<IoBenchRow>& rows, const std::vector<std::string>& paths,
                         const std::vector<uint64_t>& units) {
  for (size_t d = 0; d < paths.size(); ++d) std::printf("d%zu = %s\n", d, paths[d].c_str());
  std::printf("%-6s %-9s %6s %4s %12s %10s %9s %9s\n", "drive", "rw", "bs", "qd", "throughput", "IOPS", "p50", "p99");
  for (const IoBenchRow& r : rows) {
    if (r.together && r.drive >= 0) continue;  // together: the group's sum only
    const std::string who = r.drive >= 0 ? fmt::format("d{}", r.drive) : "all";
    std::printf("%-6s %-9s %6s %4u %12s %10.0f %9s %9s\n", who.c_str(), storage::io_pattern_name(r.rw),
                (size_label(r.bs) + (is_unit(units, r.bs) ? "*" : "")).c_str(), r.qd, format_rate(r.bw).c_str(), r.iops,
                latency_label(r.p50).c_str(), latency_label(r.p99).c_str());
  }
  if (!units.empty()) std::printf("* a unit size of the model\n");
  const uint64_t bs = headline_bs(rows, units);
  const auto at = [&](const IoBenchRow& r) { return r.rw == IoPattern::random && r.bs == bs; };
  double best_single = 0;
  for (size_t d = 0; d < paths.size(); ++d)
    if (const IoBenchRow* b = best(rows, int(d), false, at)) {
      best_single = std::max(best_single, b->bw);
      std::printf("d%zu: random %s reads at best %s (qd %u)\n", d, size_label(bs).c_str(), format_rate(b->bw).c_str(), b->qd);
    }
  if (const IoBenchRow* b = best(rows, -1, true, at))
    std::printf("all %zu together: random %s reads at best %s (qd %u each), %.2fx the fastest drive alone\n", paths.size(),
                size_label(bs).c_str(), format_rate(b->bw).c_str(), b->qd, best_single > 0 ? b->bw / best_single : 0.0);
}

}  // namespace strata::tools
