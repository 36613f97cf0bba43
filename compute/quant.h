// Tensor element types (ggml numbering, as stored in GGUF) and the kernels that read them.
//
// Layouts are the ggml block formats: a row of n elements is n / block_elems blocks of
// block_bytes each. Weights are consumed by vec_dot against activations that were first
// quantized to the weight type's `vec_dot_type` (Q8_0 for the 32-wide formats, Q8_1 for the
// ones with a min, Q8_K for K-quants, F32/F16/BF16 for float types), so the inner loops are
// integer dot products, as in llama.cpp's CPU backend (which the golden outputs come from).
#pragma once
#include <cstddef>
#include <cstdint>

namespace strata::compute {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  BF16 = 30,
  // Not a GGUF type: Q4_0 repacked in memory so that eight rows' blocks lie together (see
  // repack.h). Only the AVX-512 VNNI kernel reads it; files never contain it.
  Q4_0_R8 = 38,
};
inline constexpr uint32_t kMaxTypeId = 40;  // table size; ids >= this are unknown

struct TypeInfo {
  DType type;
  const char* name;   // "q4_0", "q4_K", ... (ggml spelling)
  int block_elems;    // elements per block (1 for float types)
  int block_bytes;    // bytes per block
  DType vec_dot_type; // activation format vec_dot expects for this weight type
  bool is_weight;     // may appear as a weight tensor type (false for Q8_1/Q8_K)
  int row_group = 1;  // rows stored together: matmul splits work only at multiples of this
};

// nullptr when the id is not a type strata knows.
const TypeInfo* find_type(uint32_t ggml_type_id);
const TypeInfo& type_info(DType t);
inline const char* type_name(DType t) { return type_info(t).name; }
// Bytes of a row of n elements; n must be a multiple of block_elems (asserted).
size_t row_bytes(DType t, int64_t n);

// Kernel signatures. n is the element count (a multiple of the type's block size).
using DequantizeFn = void (*)(const void* src, float* dst, int64_t n);
using QuantizeFn = void (*)(const float* src, void* dst, int64_t n);
// Dot product of one weight row (type T) with one activation row already in vec_dot_type(T).
using VecDotFn = float (*)(int64_t n, const void* w, const void* x);
// vec_dot over a block of weight rows and a batch of activation rows in one call:
// y[t * y_stride + r] = vec_dot(n, w + r * w_stride, x + t * x_stride) for r < nrows, t < ntok,
// up to summation order. It decodes each weight block once for all tokens and converts the
// activation scales once per call instead of once per row; matmul uses it where set.
using VecDotRowsFn = void (*)(int64_t n, const void* w, size_t w_stride, int64_t nrows, const void* x,
                              size_t x_stride, int64_t ntok, float* y, int64_t y_stride);

struct TypeKernels {
  DequantizeFn dequantize = nullptr;
  QuantizeFn quantize = nullptr;  // set for activation types (F32/F16/BF16/Q8_0/Q8_1/Q8_K)
  VecDotFn vec_dot = nullptr;     // set for weight types
  VecDotRowsFn vec_dot_rows = nullptr;  // optional fast path of matmul (see VecDotRowsFn)
};

enum class Isa { Scalar = 0, AVX2 = 1, AVX512 = 2 };
const char* isa_name(Isa isa);

struct KernelTable {
  Isa isa = Isa::Scalar;
  TypeKernels by_type[kMaxTypeId];
  const TypeKernels& operator[](DType t) const { return by_type[static_cast<uint32_t>(t)]; }
  TypeKernels& operator[](DType t) { return by_type[static_cast<uint32_t>(t)]; }
};

// Best ISA this CPU supports (cpuid + OS xsave state).
Isa detected_isa();
// Kernel table for an ISA: scalar entries are always present; SIMD entries replace them where
// written. Asking for an ISA the CPU lacks is allowed (for listing) but its kernels must not run.
const KernelTable& kernels_for(Isa isa);
// The table used by the engine: detected_isa() unless overridden by STRATA_ISA=scalar|avx2|avx512
// or set_active_isa (tests, benchmarks).
const KernelTable& kernels();
void set_active_isa(Isa isa);

// Registration hooks, one per kernel family file. Each fills the entries it implements for the
// given ISA (Isa::Scalar: the reference versions) and leaves the others untouched.
void register_float_kernels(KernelTable& t, Isa isa);   // F32, F16, BF16
void register_legacy_kernels(KernelTable& t, Isa isa);  // Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q8_1
void register_kquant_kernels(KernelTable& t, Isa isa);  // Q2_K..Q6_K, Q8_K

// Convenience wrappers over kernels().
void dequantize_row(DType t, const void* src, float* dst, int64_t n);

// fp16 / bf16 scalar conversions (IEEE half, round-to-nearest-even).
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);

}  // namespace strata::compute
