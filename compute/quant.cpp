#include "compute/quant.h"

#include <cpuid.h>

#include <cassert>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace strata::compute {

namespace {

constexpr TypeInfo kTypes[] = {
    {DType::F32, "f32", 1, 4, DType::F32, true},
    {DType::F16, "f16", 1, 2, DType::F16, true},
    {DType::BF16, "bf16", 1, 2, DType::BF16, true},
    {DType::Q4_0, "q4_0", 32, 18, DType::Q8_0, true},
    {DType::Q4_1, "q4_1", 32, 20, DType::Q8_1, true},
    {DType::Q5_0, "q5_0", 32, 22, DType::Q8_0, true},
    {DType::Q5_1, "q5_1", 32, 24, DType::Q8_1, true},
    {DType::Q8_0, "q8_0", 32, 34, DType::Q8_0, true},
    {DType::Q8_1, "q8_1", 32, 36, DType::Q8_1, false},
    {DType::Q2_K, "q2_K", 256, 84, DType::Q8_K, true},
    {DType::Q3_K, "q3_K", 256, 110, DType::Q8_K, true},
    {DType::Q4_K, "q4_K", 256, 144, DType::Q8_K, true},
    {DType::Q5_K, "q5_K", 256, 176, DType::Q8_K, true},
    {DType::Q6_K, "q6_K", 256, 210, DType::Q8_K, true},
    {DType::Q8_K, "q8_K", 256, 292, DType::Q8_K, false},
    {DType::Q4_0_R8, "q4_0_r8", 32, 18, DType::Q8_0, false, 8},
};

// F16C from CPUID leaf 1 (ECX bit 29): clang 14's __builtin_cpu_supports has no "f16c", and
// the fuzz build (scripts/fuzz.sh) compiles this file with clang.
static bool cpu_has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
}

bool cpu_has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
}

bool cpu_has_avx512() {
  __builtin_cpu_init();
  return cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512dq");
}

KernelTable build_table(Isa isa) {
  KernelTable t;
  t.isa = Isa::Scalar;
  register_float_kernels(t, Isa::Scalar);
  register_legacy_kernels(t, Isa::Scalar);
  register_kquant_kernels(t, Isa::Scalar);
  if (isa >= Isa::AVX2) {
    register_float_kernels(t, Isa::AVX2);
    register_legacy_kernels(t, Isa::AVX2);
    register_kquant_kernels(t, Isa::AVX2);
  }
  if (isa >= Isa::AVX512) {
    register_float_kernels(t, Isa::AVX512);
    register_legacy_kernels(t, Isa::AVX512);
    register_kquant_kernels(t, Isa::AVX512);
  }
  t.isa = isa;
  return t;
}

Isa initial_isa() {
  Isa best = detected_isa();
  if (const char* env = std::getenv("STRATA_ISA")) {
    std::string_view v(env);
    Isa want = v == "scalar" ? Isa::Scalar : v == "avx2" ? Isa::AVX2 : v == "avx512" ? Isa::AVX512 : best;
    if (want < best) best = want;
  }
  return best;
}

const KernelTable* g_active = nullptr;

}  // namespace

const TypeInfo* find_type(uint32_t id) {
  for (const auto& t : kTypes)
    if (static_cast<uint32_t>(t.type) == id) return &t;
  return nullptr;
}

const TypeInfo& type_info(DType t) {
  const TypeInfo* info = find_type(static_cast<uint32_t>(t));
  assert(info && "type_info on an unknown DType");
  return *info;
}

size_t row_bytes(DType t, int64_t n) {
  const TypeInfo& info = type_info(t);
  assert(n % info.block_elems == 0);
  return static_cast<size_t>(n / info.block_elems) * static_cast<size_t>(info.block_bytes);
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::AVX2: return "avx2";
    case Isa::AVX512: return "avx512";
  }
  return "?";
}

Isa detected_isa() {
  static const Isa isa = cpu_has_avx512() ? Isa::AVX512 : cpu_has_avx2() ? Isa::AVX2 : Isa::Scalar;
  return isa;
}

const KernelTable& kernels_for(Isa isa) {
  static const KernelTable scalar = build_table(Isa::Scalar);
  static const KernelTable avx2 = build_table(Isa::AVX2);
  static const KernelTable avx512 = build_table(Isa::AVX512);
  switch (isa) {
    case Isa::Scalar: return scalar;
    case Isa::AVX2: return avx2;
    case Isa::AVX512: return avx512;
  }
  return scalar;
}

const KernelTable& kernels() {
  if (!g_active) g_active = &kernels_for(initial_isa());
  return *g_active;
}

void set_active_isa(Isa isa) {
  assert(isa <= detected_isa());
  g_active = &kernels_for(isa);
}

void dequantize_row(DType t, const void* src, float* dst, int64_t n) {
  auto fn = kernels()[t].dequantize;
  assert(fn);
  fn(src, dst, n);
}

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400u)) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3ffu;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t fp32_to_fp16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0));
  if (absx >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (absx < 0x38800000u) {  // subnormal or zero in half
    if (absx < 0x33000000u) return static_cast<uint16_t>(sign);
    const uint32_t e = absx >> 23;
    const uint32_t m = (absx & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;  // 14 + (113 - e)
    uint32_t half = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1u))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = ((absx >> 13) - (112u << 10));
  const uint32_t rem = absx & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) ++half;
  return static_cast<uint16_t>(sign | half);
}

float bf16_to_fp32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t fp32_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 64);  // quiet NaN
  return static_cast<uint16_t>((x + (0x7fffu + ((x >> 16) & 1u))) >> 16);
}

}  // namespace strata::compute
