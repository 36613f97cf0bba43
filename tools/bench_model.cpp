#include "tools/bench_model.h"

#include <fmt/format.h>

#include <cctype>
#include <map>

#include "compute/quant.h"

namespace strata::tools {

std::string file_type_name(uint64_t ftype) {
  // llama.cpp marks a file type it inferred from the tensors (not stored) with this bit.
  constexpr uint64_t kGuessed = 1024;
  const bool guessed = (ftype & kGuessed) != 0;
  const uint64_t id = ftype & ~kGuessed;
  static const std::map<uint64_t, const char*> kNames = {
      {0, "all F32"},
      {1, "F16"},
      {2, "Q4_0"},
      {3, "Q4_1"},
      {4, "Q4_1, some F16"},
      {7, "Q8_0"},
      {8, "Q5_0"},
      {9, "Q5_1"},
      {10, "Q2_K - Medium"},
      {11, "Q3_K - Small"},
      {12, "Q3_K - Medium"},
      {13, "Q3_K - Large"},
      {14, "Q4_K - Small"},
      {15, "Q4_K - Medium"},
      {16, "Q5_K - Small"},
      {17, "Q5_K - Medium"},
      {18, "Q6_K"},
      {19, "IQ2_XXS - 2.0625 bpw"},
      {20, "IQ2_XS - 2.3125 bpw"},
      {21, "Q2_K - Small"},
      {22, "IQ3_XS - 3.3 bpw"},
      {23, "IQ3_XXS - 3.0625 bpw"},
      {24, "IQ1_S - 1.5625 bpw"},
      {25, "IQ4_NL - 4.5 bpw"},
      {26, "IQ3_S - 3.4375 bpw"},
      {27, "IQ3_S mix - 3.66 bpw"},
      {28, "IQ2_S - 2.5 bpw"},
      {29, "IQ2_M - 2.7 bpw"},
      {30, "IQ4_XS - 4.25 bpw"},
      {31, "IQ1_M - 1.75 bpw"},
      {32, "BF16"},
      {36, "TQ1_0 - 1.69 bpw ternary"},
      {37, "TQ2_0 - 2.06 bpw ternary"},
      {38, "MXFP4 MoE"},
  };
  const auto it = kNames.find(id);
  std::string name = it != kNames.end() ? it->second : fmt::format("ftype {}", id);
  if (guessed) name += " (guessed)";
  return name;
}

std::string params_label(uint64_t n) {
  static const struct {
    double scale;
    const char* suffix;
  } kUnits[] = {{1e12, "T"}, {1e9, "B"}, {1e6, "M"}, {1e3, "K"}};
  for (const auto& u : kUnits) {
    // 0.9995 so that 999.7K reads "1.0M", not "1000K".
    if (double(n) < u.scale * 0.9995) continue;
    const double v = double(n) / u.scale;
    std::string s = v < 9.95 ? fmt::format("{:.1f}", v) : fmt::format("{:.0f}", v);
    if (s.ends_with(".0")) s.resize(s.size() - 2);
    return s + u.suffix;
  }
  return fmt::format("{}", n);
}

BenchModel describe_bench_model(const std::string& path, const gguf::GGUFFile& file) {
  BenchModel m;
  m.filename = path;
  std::map<compute::DType, uint64_t> bytes_by_type;
  for (const auto& t : file.tensors()) {
    m.size += t.nbytes;
    m.n_params += static_cast<uint64_t>(t.n_elements);
    bytes_by_type[t.type] += t.nbytes;
  }
  std::string type;
  if (const auto ft = file.get_uint("general.file_type")) {
    type = file_type_name(*ft);
  } else {
    // Files converted without a file type (llama2.c exports, some tests) still have one tensor
    // type that dominates the bytes; that is what the reader wants to know.
    compute::DType top = compute::DType::F32;
    uint64_t top_bytes = 0;
    for (const auto& [t, b] : bytes_by_type)
      if (b > top_bytes) top = t, top_bytes = b;
    for (char c : std::string(compute::type_name(top))) type += char(std::toupper(static_cast<unsigned char>(c)));
  }
  m.type = fmt::format("{} {} {}", file.architecture(), params_label(m.n_params), type);
  return m;
}

}  // namespace strata::tools
