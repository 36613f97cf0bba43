// GGUF header, metadata and tensor index (GGUFFile::open), then Model::load on whatever parses:
// hyperparameters, the tokenizer from metadata, tensor binding and reading the small vectors.
// Any strata::Error is a correct refusal; a crash, a leak, a hang or an allocation past
// libFuzzer's -malloc_limit_mb is a bug (a file that claims 2^40 elements must be refused, not
// allocated).
//
// The weights come from an in-memory provider over the input itself: the resident provider's
// io_uring ring, reader threads and huge-page arena cost ~25 ms per load (37 runs/s), and what
// they read is bounded by the tensor ranges the parser already checked against the file size;
// the provider below aborts if a range the parser accepted lies outside the file.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "fuzz/fuzz_common.h"
#include "models/gguf/gguf.h"
#include "models/model.h"
#include "runtime/weight_provider.h"

namespace {

using namespace strata;

struct Input {
  const uint8_t* data = nullptr;
  size_t size = 0;
} input;

class MemoryProvider final : public runtime::WeightProvider {
 public:
  runtime::UnitId add_unit(runtime::UnitDesc desc) override {
    Unit u;
    uint64_t total = 0;
    for (const auto& r : desc.ranges) {
      if (r.file != 0 || r.offset > input.size || r.length > input.size - r.offset) std::abort();
      u.offsets.push_back(total);
      total += r.length;
    }
    // 64-byte aligned as the resident arena is: kernels may use aligned loads.
    u.bytes.reset(static_cast<std::byte*>(std::aligned_alloc(64, (total + 63) / 64 * 64 + 64)));
    for (size_t i = 0; i < desc.ranges.size(); ++i)
      std::memcpy(u.bytes.get() + u.offsets[i], input.data + desc.ranges[i].offset, desc.ranges[i].length);
    u.desc = std::move(desc);
    units_.push_back(std::move(u));
    return runtime::UnitId(units_.size() - 1);
  }
  void finalize() override {}
  const std::byte* acquire(runtime::UnitId id) override { return units_.at(id).bytes.get(); }
  void release(runtime::UnitId) override {}
  void set_transform(runtime::UnitId id, std::function<void(std::byte*)> fn) override {
    fn(units_.at(id).bytes.get());
  }
  const runtime::UnitDesc& unit(runtime::UnitId id) const override { return units_.at(id).desc; }
  size_t range_offset(runtime::UnitId id, size_t range) const override {
    return units_.at(id).offsets.at(range);
  }
  size_t unit_count() const override { return units_.size(); }
  uint64_t resident_bytes() const override { return 0; }

 private:
  struct Free {
    void operator()(std::byte* p) const { std::free(p); }
  };
  struct Unit {
    runtime::UnitDesc desc;
    std::vector<uint64_t> offsets;
    std::unique_ptr<std::byte, Free> bytes;
  };
  std::vector<Unit> units_;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setenv("STRATA_PROGRESS", "0", 1);
  std::atexit([] { std::remove(fuzz::scratch_path().c_str()); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::write_scratch(data, size);
  input = {data, size};
  try {
    gguf::GGUFFile f = gguf::GGUFFile::open(fuzz::scratch_path());
    // Exercise the typed getters on every key, as the loaders and `strata info` do.
    for (const auto& [key, value] : f.metadata()) {
      try { (void)f.get_uint(key); } catch (const Error&) {}
      try { (void)f.get_float(key); } catch (const Error&) {}
      try { (void)f.get_string(key); } catch (const Error&) {}
    }
    models::LoadOptions opts;
    opts.provider = [](const std::vector<std::string>&) { return std::make_unique<MemoryProvider>(); };
    auto model = models::Model::load(fuzz::scratch_path(), std::move(opts));
  } catch (const Error&) {
  }
  return 0;
}
