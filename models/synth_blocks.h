// Random tensor bytes for synthetic models, written straight in the storage format (quant
// blocks are made from random bits and chosen scales, never by quantizing floats).
//
// Every byte is a function of (key, byte offset) alone: the bits come from a counter-based
// generator (splitmix64's output function applied to key + index * golden ratio), so any range
// of a tensor can be produced by any thread in any order and the file is the same whatever the
// chunking or thread count.
#pragma once
#include <cstdint>
#include <span>

#include "compute/quant.h"

namespace strata::models::synth {

inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Key of one tensor's bit stream.
inline uint64_t tensor_key(uint64_t seed, uint64_t tensor_index) {
  return mix64(mix64(seed ^ 0x5eed5eed5eed5eedull) + tensor_index * 0x9e3779b97f4a7c15ull);
}

// Bytes [offset, offset + dst.size()) of a tensor of `type` whose dequantized values have mean
// about 0 and standard deviation about `stddev`. Supported: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1
// Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K (others are asserted against).
void fill_random(compute::DType type, uint64_t key, float stddev, uint64_t offset,
                 std::span<uint8_t> dst);

// The F32 case of fill_random with each row scaled: element j is multiplied by
// row_gain[j / row_length]. Gains of 1 give exactly fill_random's bytes. Routers use it to make
// some experts' logits spread wider than others' (models/synth.h, SynthRouting::Zipf).
void fill_random_f32_rows(uint64_t key, float stddev, int64_t row_length, std::span<const float> row_gain,
                          uint64_t offset, std::span<uint8_t> dst);

// Bytes of an F32 tensor whose elements all equal `value`.
void fill_constant_f32(float value, uint64_t offset, std::span<uint8_t> dst);

}  // namespace strata::models::synth
