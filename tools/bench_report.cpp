#include "tools/bench_report.h"
#include "tools/common.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <numeric>

#include "storage/error.h"
#include "tools/units.h"

// Set by tools/CMakeLists.txt at configure time; absent when built outside a git checkout.
#ifndef STRATA_BUILD_COMMIT
#define STRATA_BUILD_COMMIT "unknown"
#endif
#ifndef STRATA_BUILD_NUMBER
#define STRATA_BUILD_NUMBER 0
#endif

namespace strata::tools {
namespace {

std::string utc_now_iso8601() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

double mean(const std::vector<double>& v) { return v.empty() ? 0 : std::accumulate(v.begin(), v.end(), 0.0) / v.size(); }

double stddev(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  const double m = mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size() - 1));
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// A count as llama-bench's params column shows it ("6.74 B"), scaled down for small models so
// that a 300K-parameter test model does not read "0.00 B".
std::string params_column(uint64_t n) {
  static const struct {
    double scale;
    const char* suffix;
  } kUnits[] = {{1e12, "T"}, {1e9, "B"}, {1e6, "M"}, {1e3, "K"}};
  for (const auto& u : kUnits)
    if (double(n) >= u.scale) return fmt::format("{:.2f} {}", double(n) / u.scale, u.suffix);
  return fmt::format("{}", n);
}

std::string test_name(const BenchRow& r) {
  const int np = r.value("n_prompt", 0), ng = r.value("n_gen", 0);
  return np > 0 ? fmt::format("pp{}", np) : fmt::format("tg{}", ng);
}

struct Column {
  const char* name;
  bool right;  // numbers align right, as in llama-bench's table
  std::function<std::string(const BenchRow&)> text;
};

void print_markdown(const BenchReport& report) {
  const bool streamed = std::any_of(report.rows.begin(), report.rows.end(),
                                    [](const BenchRow& r) { return r.contains("memory_budget"); });
  std::vector<Column> cols = {
      {"model", false, [](const BenchRow& r) { return r.value("model_type", std::string()); }},
      {"size", true, [](const BenchRow& r) { return format_bytes(r.value("model_size", 0.0)); }},
      {"params", true, [](const BenchRow& r) { return params_column(r.value("model_n_params", uint64_t(0))); }},
      {"backend", false, [](const BenchRow& r) { return r.value("backends", std::string()); }},
      {"threads", true, [](const BenchRow& r) { return fmt::format("{}", r.value("n_threads", 0)); }},
  };
  if (streamed) {
    cols.push_back({"n_batch", true, [](const BenchRow& r) { return fmt::format("{}", r.value("n_batch", 0)); }});
    cols.push_back({"budget", true, [](const BenchRow& r) { return format_bytes(r.value("memory_budget", 0.0)); }});
    cols.push_back({"io", false, [](const BenchRow& r) { return r.value("io", std::string()); }});
  }
  cols.push_back({"test", true, test_name});
  cols.push_back({"t/s", true, [](const BenchRow& r) {
                    return fmt::format("{:.2f} ± {:.2f}", r.value("avg_ts", 0.0), r.value("stddev_ts", 0.0));
                  }});
  if (streamed) {
    cols.push_back({"read/token", true, [](const BenchRow& r) { return format_bytes(r.value("bytes_read_per_token", 0.0)); }});
    cols.push_back({"floor ratio", true, [](const BenchRow& r) { return fmt::format("{:.2f}", r.value("ratio_to_floor", 0.0)); }});
    cols.push_back({"roofline ratio", true, [](const BenchRow& r) {
                      const auto it = r.find("ratio_to_roofline");
                      return it == r.end() || it->is_null() ? std::string("-") : fmt::format("{:.2f}", it->get<double>());
                    }});
  }

  std::vector<std::vector<std::string>> cells;
  std::vector<size_t> width(cols.size());
  // Width in characters, not bytes: "±" is two bytes.
  auto chars = [](const std::string& s) {
    return size_t(std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
  };
  for (size_t c = 0; c < cols.size(); ++c) width[c] = std::max<size_t>(3, chars(cols[c].name));
  for (const BenchRow& r : report.rows) {
    auto& line = cells.emplace_back();
    for (size_t c = 0; c < cols.size(); ++c) {
      line.push_back(cols[c].text(r));
      width[c] = std::max(width[c], chars(line.back()));
    }
  }
  auto print_line = [&](auto&& cell_text) {
    std::string out = "|";
    for (size_t c = 0; c < cols.size(); ++c) {
      const std::string s = cell_text(c);
      const std::string pad(width[c] - std::min(width[c], chars(s)), ' ');
      out += ' ';
      out += cols[c].right ? pad + s : s + pad;
      out += " |";
    }
    std::printf("%s\n", out.c_str());
  };
  print_line([&](size_t c) { return std::string(cols[c].name); });
  print_line([&](size_t c) {
    return cols[c].right ? std::string(width[c] - 1, '-') + ":" : std::string(width[c], '-');
  });
  for (const auto& line : cells) print_line([&](size_t c) { return line[c]; });
  std::printf("\nbuild: %s (%d)\n", STRATA_BUILD_COMMIT, int(STRATA_BUILD_NUMBER));
  for (const std::string& n : report.notes) std::printf("%s\n", n.c_str());
}

std::string csv_value(const nlohmann::ordered_json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string s;
    for (const auto& x : v) {
      if (!s.empty()) s += ';';
      s += csv_value(x);
    }
    return s;
  }
  return v.dump();
}

std::string csv_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

void print_csv(const BenchReport& report) {
  // Streamed rows carry more fields than resident ones; one header covers them all.
  std::vector<std::string> keys;
  for (const BenchRow& r : report.rows)
    for (const auto& [k, v] : r.items())
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  std::string head;
  for (const auto& k : keys) {
    if (!head.empty()) head += ',';
    head += csv_quote(k);
  }
  std::printf("%s\n", head.c_str());
  for (const BenchRow& r : report.rows) {
    std::string line;
    for (size_t i = 0; i < keys.size(); ++i) {
      if (i) line += ",";
      line += csv_quote(r.contains(keys[i]) ? csv_value(r[keys[i]]) : "");
    }
    std::printf("%s\n", line.c_str());
  }
}

}  // namespace

BenchFormat parse_bench_format(const std::string& s) {
  if (s == "md") return BenchFormat::Md;
  if (s == "json") return BenchFormat::Json;
  if (s == "jsonl") return BenchFormat::Jsonl;
  if (s == "csv") return BenchFormat::Csv;
  fail("-o/--output '{}': expected md, json, jsonl or csv", s);
}

BenchRow bench_row(const BenchModel& model, int n_batch, int n_threads, int n_prompt, int n_gen) {
  static const std::string cpu = cpu_model_name();
  BenchRow r;
  r["build_commit"] = STRATA_BUILD_COMMIT;
  r["build_number"] = int(STRATA_BUILD_NUMBER);
  r["cpu_info"] = cpu;
  r["backends"] = "CPU";
  r["model_filename"] = model.filename;
  r["model_type"] = model.type;
  r["model_size"] = model.size;
  r["model_n_params"] = model.n_params;
  r["n_batch"] = n_batch;
  r["n_threads"] = n_threads;
  r["n_gpu_layers"] = 0;
  r["n_prompt"] = n_prompt;
  r["n_gen"] = n_gen;
  r["test_time"] = utc_now_iso8601();
  return r;
}

void add_timing(BenchRow& row, int64_t tokens_per_run, const std::vector<uint64_t>& samples_ns) {
  std::vector<double> ns, ts;
  for (uint64_t x : samples_ns) {
    ns.push_back(double(x));
    ts.push_back(x ? double(tokens_per_run) * 1e9 / double(x) : 0.0);
  }
  row["avg_ns"] = static_cast<uint64_t>(std::llround(mean(ns)));
  row["stddev_ns"] = static_cast<uint64_t>(std::llround(stddev(ns)));
  row["avg_ts"] = mean(ts);
  row["stddev_ts"] = stddev(ts);
  row["samples_ns"] = samples_ns;
  row["samples_ts"] = ts;
  row["median_ts"] = median(ts);
  row["n_reps"] = samples_ns.size();
}

void print_bench_report(const BenchReport& report, BenchFormat format) {
  switch (format) {
    case BenchFormat::Md:
      print_markdown(report);
      break;
    case BenchFormat::Json:
      std::cout << nlohmann::ordered_json(report.rows).dump(2) << "\n";
      break;
    case BenchFormat::Jsonl:
      for (const BenchRow& r : report.rows) std::cout << r.dump() << "\n";
      break;
    case BenchFormat::Csv:
      print_csv(report);
      break;
  }
  std::fflush(stdout);
}

}  // namespace strata::tools
