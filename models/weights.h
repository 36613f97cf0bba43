// The model's view of its weights: matrices and expert sets bound to provider units, with the
// shapes checked against the hyperparameters when the model is loaded.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "compute/matmul.h"
#include "runtime/weight_provider.h"

namespace strata::gguf { class GGUFFile; struct TensorInfo; }

namespace strata::models {

// Rows [row0, row0 + rows) of a matrix, held by one unit.
struct RowBlock {
  runtime::UnitId unit = 0;
  int64_t row0 = 0, rows = 0;
};

// A 2-D weight matrix: `rows` outputs of `cols` inputs. Usually one unit; a matrix larger than
// the provider's max_unit_bytes() is registered as several row blocks, read and multiplied one
// block at a time, so the budget never has to hold it whole.
struct Matrix {
  runtime::UnitId unit = 0;  // the first block's unit
  std::vector<RowBlock> blocks;
  compute::DType type = compute::DType::F32;
  int64_t rows = 0, cols = 0;
  size_t row_stride = 0;
  bool present = false;
  // `unit_data`: where the matrix starts (UnitLease::range(i)).
  compute::MatrixView view(const std::byte* unit_data) const {
    return {type, unit_data, rows, cols, row_stride};
  }
};

// A 1-D weight (norm scales), read into floats once the provider is finalized.
struct VectorRef {
  runtime::UnitId unit = 0;
  compute::DType type = compute::DType::F32;
  int64_t n = 0;
  bool present = false;
};

// One unit of an expert. Whole: the expert's gate, up and down matrices as ranges 0, 1, 2.
// An expert larger than the provider's max_unit_bytes() is split instead: GateUp parts hold
// rows [row0, row0 + rows) of gate (range 0) and up (range 1), Down parts rows of down (range 0),
// so the budget never has to hold one expert whole.
struct ExpertPart {
  enum Kind : uint8_t { Whole, GateUp, Down };
  runtime::UnitId unit = 0;
  Kind kind = Whole;
  int64_t row0 = 0, rows = 0;
};

// The experts of one MoE layer (the place of each range in a unit's bytes comes from
// provider.range_offset).
struct ExpertSet {
  std::vector<std::vector<ExpertPart>> parts;  // per expert: its units, GateUp parts before Down
  std::vector<runtime::UnitId> units;          // per expert: its first unit
  Matrix gate, up, down;  // shapes and types; unit and block fields unused
  bool split = false;     // experts are in several parts
};

// Registers tensors of a GGUF file as provider units and checks their shapes.
class WeightBinder {
 public:
  WeightBinder(const gguf::GGUFFile& file, runtime::WeightProvider& provider)
      : file_(file), provider_(provider) {}

  // A 2-D tensor [cols, rows] (ggml order). Missing -> error naming `why` unless optional.
  Matrix matrix(const std::string& name, int64_t cols, int64_t rows, runtime::UnitKind kind,
                int layer, bool optional = false);
  // A 1-D f32-convertible vector of n elements (norm weights); read after finalize().
  VectorRef vector(const std::string& name, int64_t n, int layer, bool optional = false);
  // 3-D expert tensors gate/up [n_embd, n_ff, n_expert] and down [n_ff, n_embd, n_expert].
  ExpertSet experts(const std::string& prefix, int64_t n_embd, int64_t n_ff, int64_t n_expert, int layer);

  const gguf::GGUFFile& file() const { return file_; }

 private:
  const gguf::TensorInfo& tensor(const std::string& name, bool optional);
  void check_shape(const gguf::TensorInfo& t, std::vector<int64_t> want);
  const gguf::GGUFFile& file_;
  runtime::WeightProvider& provider_;
};

// Reads a 1-D weight unit as floats (dequantizing if needed).
// Empty when the vector is absent.
std::vector<float> read_vector(runtime::WeightProvider& p, const VectorRef& v);

}  // namespace strata::models
