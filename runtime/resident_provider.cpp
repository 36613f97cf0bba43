// Resident weights: every unit read into its own RAM buffer at finalize(). The baseline for
// "same answers" checks and for models that fit in memory.
#include <memory>
#include <vector>

#include "runtime/weight_provider.h"
#include "storage/error.h"
#include "storage/file.h"

namespace strata::runtime {
namespace {

class ResidentProvider final : public WeightProvider {
 public:
  explicit ResidentProvider(std::vector<std::string> paths) : paths_(std::move(paths)) {}

  UnitId add_unit(UnitDesc desc) override {
    units_.push_back(std::move(desc));
    return static_cast<UnitId>(units_.size() - 1);
  }

  void finalize() override {
    std::vector<storage::File> files;
    for (const auto& p : paths_) files.push_back(storage::File::open_read(p));
    data_.resize(units_.size());
    for (size_t i = 0; i < units_.size(); ++i) {
      const uint64_t total = units_[i].bytes();
      data_[i] = std::make_unique<std::byte[]>(total);
      uint64_t at = 0;
      for (const FileRange& r : units_[i].ranges) {
        if (r.file >= files.size()) fail("weight unit {}: file index {} out of range", units_[i].name, r.file);
        files[r.file].read_exact(data_[i].get() + at, r.length, r.offset);
        at += r.length;
      }
      bytes_ += total;
    }
  }

  void set_transform(UnitId id, std::function<void(std::byte*)> fn) override { fn(data_.at(id).get()); }
  const std::byte* acquire(UnitId id) override { return data_.at(id).get(); }
  void release(UnitId) override {}
  const UnitDesc& unit(UnitId id) const override { return units_.at(id); }
  size_t range_offset(UnitId id, size_t range) const override {
    size_t at = 0;
    const auto& rs = units_.at(id).ranges;
    for (size_t i = 0; i < range; ++i) at += rs[i].length;
    return at;
  }
  size_t unit_count() const override { return units_.size(); }
  uint64_t resident_bytes() const override { return bytes_; }
  ProviderStats stats() const override {
    ProviderStats st;
    st.io = "resident";
    st.resident_bytes = st.peak_resident_bytes = bytes_;
    st.bytes_read = bytes_;
    return st;
  }

 private:
  std::vector<std::string> paths_;
  std::vector<UnitDesc> units_;
  std::vector<std::unique_ptr<std::byte[]>> data_;
  uint64_t bytes_ = 0;
};

}  // namespace

std::unique_ptr<WeightProvider> make_resident_provider(std::vector<std::string> paths) {
  return std::make_unique<ResidentProvider>(std::move(paths));
}

}  // namespace strata::runtime
