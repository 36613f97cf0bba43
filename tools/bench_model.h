// How `strata bench` names a model in its rows, in llama-bench's terms, so results from the two
// tools line up: model_type reads "<arch> <parameter count> <file type>" ("llama 1.5M Q4_0",
// "llama 11B Q4_K - Medium"), with llama.cpp's names for GGUF file types.
#pragma once
#include <cstdint>
#include <string>

#include "models/gguf/gguf.h"

namespace strata::tools {

struct BenchModel {
  std::string filename;  // as given on the command line
  std::string type;      // model_type
  uint64_t size = 0;     // bytes of all tensors
  uint64_t n_params = 0; // elements of all tensors
};

BenchModel describe_bench_model(const std::string& path, const gguf::GGUFFile& file);

// llama.cpp's name of a `general.file_type` value ("Q4_0", "Q4_K - Medium"); "ftype N" when unknown.
std::string file_type_name(uint64_t ftype);

// "293K", "1.5M", "11B": a parameter count as a short label.
std::string params_label(uint64_t n);

}  // namespace strata::tools
