// RAII block of memory aligned for O_DIRECT (page-aligned by default). Contents start
// uninitialized. Move-only.
#pragma once
#include <cassert>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <span>
#include <utility>

namespace strata::storage {

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  // alignment: a power of two (O_DIRECT needs the file's block size; 4096 covers every device).
  explicit AlignedBuffer(size_t size, size_t alignment = 4096) : size_(size) {
    assert(alignment > 0 && (alignment & (alignment - 1)) == 0);
    if (alignment < sizeof(void*)) alignment = sizeof(void*);
    if (size == 0) return;
    // aligned_alloc wants the size to be a multiple of the alignment.
    const size_t rounded = (size + alignment - 1) / alignment * alignment;
    data_ = static_cast<std::byte*>(std::aligned_alloc(alignment, rounded));
    if (!data_) throw std::bad_alloc();
  }
  ~AlignedBuffer() { std::free(data_); }
  AlignedBuffer(AlignedBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    if (this != &o) {
      std::free(data_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  std::byte* data() { return data_; }
  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<std::byte> span() { return {data_, size_}; }
  std::span<const std::byte> span() const { return {data_, size_}; }

 private:
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace strata::storage
