#include "tools/plan_compute.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "compute/matmul.h"
#include "compute/repack.h"
#include "models/synth.h"
#include "models/synth_blocks.h"
#include "storage/error.h"
#include "tools/common.h"

namespace strata::tools {
namespace {

std::string cache_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/strata";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/strata";
  return {};
}

double measure(compute::DType type, int64_t cols) {
  const size_t row = compute::row_bytes(type, cols);
  int64_t rows = std::max<int64_t>(8, int64_t((256ull << 20) / row)) / 8 * 8;  // above any last-level cache
  std::vector<uint8_t> w(static_cast<size_t>(rows) * row);
  const std::string name = compute::type_name(type);
  if (models::parse_synth_type(name)) models::synth::fill_random(type, 0x9e3779b9, 0.02f, 0, w);
  compute::MatrixView m{type, w.data(), rows, cols, row};
  // As the model multiplies it: Q4_0 repacked for the VNNI kernel unless the plain one is as fast.
  if (type == compute::DType::Q4_0 && compute::q4_0_r8_available() && !compute::q4_0_plain_is_fast() &&
      compute::q4_0_r8_fits(rows, cols)) {
    compute::repack_q4_0_r8(w.data(), rows, cols);
    m.type = compute::DType::Q4_0_R8;
  }
  std::vector<float> x(static_cast<size_t>(cols), 0.5f), y(static_cast<size_t>(rows));
  compute::QuantizedActivations q;
  q.quantize(compute::type_info(m.type).vec_dot_type, x.data(), 1, cols);
  compute::matmul(m, q, y.data(), rows);  // warm: pages faulted, threads started
  std::vector<double> s;
  for (int i = 0; i < 5; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    compute::matmul(m, q, y.data(), rows);
    s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(s.begin(), s.end());
  return double(w.size()) / s[s.size() / 2];
}

}  // namespace

ComputeRate measure_compute_rate(compute::DType type, int64_t cols, int threads, bool remeasure) {
  ComputeRate r;
  r.cpu = cpu_model_name();
  const std::string dir = cache_dir();
  if (!dir.empty()) r.cache_path = fmt::format("{}/compute-{}-{}.json", dir, compute::type_name(type), threads);
  if (!remeasure && !r.cache_path.empty()) {
    std::ifstream in(r.cache_path);
    const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.value("cpu", "") == r.cpu && j.value("cols", int64_t(0)) == cols &&
        j.value("bytes_per_s", 0.0) > 0) {
      r.bytes_per_s = j["bytes_per_s"].get<double>();
      r.cached = true;
      return r;
    }
  }
  r.bytes_per_s = measure(type, cols);
  if (!r.cache_path.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    std::ofstream out(r.cache_path);
    out << nlohmann::json{{"cpu", r.cpu}, {"type", compute::type_name(type)}, {"threads", threads}, {"cols", cols},
                          {"bytes_per_s", r.bytes_per_s}}
               .dump(2)
        << "\n";
    if (!out) r.cache_path.clear();  // not kept: said so by the caller
  }
  return r;
}

}  // namespace strata::tools
