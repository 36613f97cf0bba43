// The rows `strata bench` prints, in llama-bench's field names (a script written for
// llama-bench's JSON reads ours), and the four forms it prints them in (-o md|json|jsonl|csv).
// Each row is one test (pp<N> or tg<N>) at one setting of threads and batch.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "tools/bench_model.h"

namespace strata::tools {

// Fields keep the order they were added in (llama-bench's order), for the CSV columns and
// for readers comparing the two tools' output by eye.
using BenchRow = nlohmann::ordered_json;

enum class BenchFormat { Md, Json, Jsonl, Csv };
// "md", "json", "jsonl" or "csv" (the values -o accepts).
BenchFormat parse_bench_format(const std::string& s);

// A row's fixed fields: build, machine, model and test setting; the timing is added apart.
// `n_gpu_layers` is always 0 (no GPU tier).
BenchRow bench_row(const BenchModel& model, int n_batch, int n_threads, int n_prompt, int n_gen);

// The timing fields from each repetition's wall time: avg/stddev in ns and in tokens/s (the
// tokens/s statistics are over the per-run rates, as llama-bench computes them), the raw
// samples, and our median_ts and n_reps.
void add_timing(BenchRow& row, int64_t tokens_per_run, const std::vector<uint64_t>& samples_ns);

// Rows and the lines printed under the markdown table (notes say what the table cannot).
struct BenchReport {
  std::vector<BenchRow> rows;
  std::vector<std::string> notes;
};

// Prints to stdout. md: llama-bench's table (streamed rows get their budget, io, read per token
// and ratio-to-floor columns) then the build line; json: one array; jsonl: one row a line;
// csv: a header of every field any row has, every value quoted, arrays joined with ';'.
void print_bench_report(const BenchReport& report, BenchFormat format);

}  // namespace strata::tools
