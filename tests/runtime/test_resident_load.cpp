// The resident provider (no --memory-budget) reads every unit into one arena at load: every
// unit's ranges must hold the file's bytes at range_offset, whichever read path ran (io_uring
// O_DIRECT, the pread fallback, a tmpfs file that refuses O_DIRECT); progress ends at the real
// total; a short file is an error naming it; transforms still apply once, in order, before any
// acquire returns; and a resident model computes the same logits as one streamed from disk.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <tbb/parallel_for.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "models/gguf/gguf.h"
#include "models/model.h"
#include "models/synth.h"
#include "runtime/streaming_provider.h"
#include "runtime/weight_provider.h"
#include "storage/error.h"
#include "storage/file.h"
#include "tests/shared_data.h"
#include "tests/storage/read_test_support.h"

namespace fs = std::filesystem;
using strata::models::LoadOptions;
using strata::models::Model;
using strata::runtime::FileRange;
using strata::runtime::UnitDesc;
using strata::runtime::UnitId;
using strata::runtime::UnitLease;
using strata::runtime::WeightProvider;

namespace {

// Sets an environment variable for the life of the object.
class EnvVar {
 public:
  EnvVar(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    ::setenv(name, value, 1);
  }
  ~EnvVar() {
    if (had_) ::setenv(name_, old_.c_str(), 1);
    else ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

// A scratch directory in /dev/shm (tmpfs: open(O_DIRECT) fails there), or none.
class ShmDir {
 public:
  ShmDir() {
    std::string tmpl = "/dev/shm/strata-resident-test-XXXXXX";
    if (fs::is_directory("/dev/shm") && ::mkdtemp(tmpl.data())) path_ = tmpl;
  }
  ~ShmDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  bool ok() const { return !path_.empty(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// Passes everything through except transforms, which it drops: the units keep the file's bytes
// (the model would repack Q4_0 ones), so they can be compared with the file.
class Untransformed final : public WeightProvider {
 public:
  explicit Untransformed(std::unique_ptr<WeightProvider> inner) : inner_(std::move(inner)) {}
  UnitId add_unit(UnitDesc d) override { return inner_->add_unit(std::move(d)); }
  void finalize() override { inner_->finalize(); }
  const std::byte* acquire(UnitId id) override { return inner_->acquire(id); }
  void release(UnitId id) override { inner_->release(id); }
  void set_transform(UnitId, std::function<void(std::byte*)>) override {}
  uint64_t max_unit_bytes() const override { return inner_->max_unit_bytes(); }
  strata::runtime::ProviderStats stats() const override { return inner_->stats(); }
  const UnitDesc& unit(UnitId id) const override { return inner_->unit(id); }
  size_t range_offset(UnitId id, size_t r) const override { return inner_->range_offset(id, r); }
  size_t unit_count() const override { return inner_->unit_count(); }
  uint64_t resident_bytes() const override { return inner_->resident_bytes(); }

 private:
  std::unique_ptr<WeightProvider> inner_;
};

LoadOptions resident_untransformed(strata::runtime::LoadProgress progress = {}) {
  LoadOptions o;
  o.provider = [progress](const std::vector<std::string>& paths) -> std::unique_ptr<WeightProvider> {
    return std::make_unique<Untransformed>(strata::runtime::make_resident_provider(paths, progress));
  };
  return o;
}

// Names of the units whose ranges differ from the file's bytes (empty: all match).
std::vector<std::string> units_unlike_file(WeightProvider& p, const std::vector<std::string>& paths) {
  std::vector<strata::storage::File> files;
  for (const auto& path : paths) files.push_back(strata::storage::File::open_read(path));
  std::vector<std::string> bad;
  std::vector<std::byte> want;
  for (UnitId id = 0; id < p.unit_count(); ++id) {
    UnitLease lease(p, id);
    const UnitDesc& d = p.unit(id);
    for (size_t i = 0; i < d.ranges.size(); ++i) {
      const FileRange& r = d.ranges[i];
      want.resize(r.length);
      if (r.length) files.at(r.file).read_exact(want.data(), r.length, r.offset);
      if (r.length && std::memcmp(lease.range(i), want.data(), r.length) != 0) {
        bad.push_back(d.name + " range " + std::to_string(i));
        break;
      }
    }
  }
  return bad;
}

uint64_t unit_bytes(const WeightProvider& p) {
  uint64_t n = 0;
  for (UnitId id = 0; id < p.unit_count(); ++id) n += p.unit(id).bytes();
  return n;
}

// A small Mixtral-style Q4_0 model (~15 MiB: 2 layers of 8 experts) written to `path`.
std::string write_synth(const std::string& path, int64_t layers = 2) {
  strata::models::SynthSpec s = strata::models::default_synth_spec(strata::models::SynthArch::Mixtral);
  s.n_layer = layers;
  s.seed = 11;
  strata::models::synth_model(s, path);
  return path;
}

std::vector<fs::path> shared_models(const fs::path& shared) {
  std::vector<fs::path> v;
  for (const auto& e : fs::directory_iterator(shared / "models"))
    if (e.path().extension() == ".gguf") v.push_back(e.path());
  std::sort(v.begin(), v.end());
  return v;
}

void check_model_units(const std::string& path) {
  CAPTURE(path);
  auto m = Model::load(path, resident_untransformed());
  const auto bad = units_unlike_file(m->provider(), m->file().paths());
  CHECK_MESSAGE(bad.empty(), (bad.empty() ? "" : bad.front()));
  CHECK(m->provider().resident_bytes() == unit_bytes(m->provider()));
}

// Units over a pattern file of `size` bytes (strata::test::pattern_byte): back-to-back tensors at
// unaligned offsets, an expert-like unit of three distant ranges, overlapping and duplicate
// ranges, an empty range, and a range that ends exactly at the unaligned end of the file.
struct PatternUnits {
  std::vector<UnitDesc> units;
  UnitId overlap_a = 0, overlap_b = 0, duplicate = 0;
};

PatternUnits pattern_units(uint64_t size) {
  PatternUnits pu;
  auto add = [&](std::string name, std::vector<FileRange> ranges) {
    UnitDesc d;
    d.name = std::move(name);
    d.ranges = std::move(ranges);
    pu.units.push_back(std::move(d));
    return static_cast<UnitId>(pu.units.size() - 1);
  };
  uint64_t at = 77;
  for (int i = 0; at < size / 2; ++i) {
    const uint64_t len = 1000 + (uint64_t(i) * 7919) % 300000;
    add("dense." + std::to_string(i), {{0, at, len}});
    at += len;
  }
  add("expert", {{0, size / 2 + 12345, 70001}, {0, size / 2 + 900001, 65536}, {0, size / 2 + 400003, 131}});
  pu.overlap_a = add("overlap.a", {{0, size / 2 + 2000000, 5000}});
  pu.overlap_b = add("overlap.b", {{0, size / 2 + 2003000, 9000}});
  pu.duplicate = add("duplicate", {{0, size / 2 + 2000000, 5000}});
  add("empty", {{0, size / 2 + 100, 0}, {0, size / 2 + 3000000, 4096}});
  add("tail", {{0, size - 777, 777}});
  return pu;
}

std::unique_ptr<WeightProvider> load_units(const std::vector<std::string>& paths, const std::vector<UnitDesc>& units,
                                           strata::runtime::LoadProgress progress = {}) {
  auto p = strata::runtime::make_resident_provider(paths, std::move(progress));
  for (const UnitDesc& d : units) p->add_unit(d);
  p->finalize();
  return p;
}

void check_pattern_units(const std::string& path, uint64_t size) {
  CAPTURE(path);
  const PatternUnits pu = pattern_units(size);
  auto p = load_units({path}, pu.units);
  REQUIRE(p->unit_count() == pu.units.size());
  int bad = 0;
  for (UnitId id = 0; id < p->unit_count(); ++id) {
    UnitLease lease(*p, id);
    for (size_t i = 0; i < pu.units[id].ranges.size(); ++i) {
      const FileRange& r = pu.units[id].ranges[i];
      if (strata::test::pattern_mismatch(lease.range(i), r.offset, r.length) >= 0) {
        if (bad++ == 0) MESSAGE("first unit unlike the file: ", pu.units[id].name, " range ", i);
      }
    }
  }
  CHECK(bad == 0);
  CHECK(p->resident_bytes() == unit_bytes(*p));
}

}  // namespace

TEST_CASE("resident units hold the file's bytes at range_offset: io_uring, the pread fallback, tmpfs") {
  strata::test::ScratchDir dir;
  const uint64_t size = (24u << 20) + 12345;  // an unaligned end
  const std::string pattern = dir.pattern_file("pattern.bin", size);
  const std::string model = write_synth(dir.file("synth.gguf"));
  if (!dir.direct_io_supported()) MESSAGE("note: /var/tmp refuses O_DIRECT here; reads went through the page cache");
  SUBCASE("io_uring (O_DIRECT on a disk filesystem)") {
    check_pattern_units(pattern, size);
    check_model_units(model);
  }
  SUBCASE("the pread fallback (STRATA_URING_DISABLE=1)") {
    EnvVar off("STRATA_URING_DISABLE", "1");
    check_pattern_units(pattern, size);
    check_model_units(model);
  }
  SUBCASE("tmpfs (/dev/shm), which refuses O_DIRECT before Linux 6.6") {
    ShmDir shm;
    if (!shm.ok()) {
      MESSAGE("skipped: no /dev/shm");
      return;
    }
    fs::copy_file(pattern, shm.file("pattern.bin"));
    fs::copy_file(model, shm.file("synth.gguf"));
    const int fd = ::open(shm.file("pattern.bin").c_str(), O_RDONLY | O_DIRECT);
    MESSAGE(std::string(fd >= 0 ? "/dev/shm takes O_DIRECT on this kernel" : "/dev/shm refuses O_DIRECT: buffered reads"));
    if (fd >= 0) ::close(fd);
    check_pattern_units(shm.file("pattern.bin"), size);
    check_model_units(shm.file("synth.gguf"));
  }
}

TEST_CASE("resident units of every reference model hold the file's bytes") {
  STRATA_REQUIRE_SHARED(shared);
  for (const fs::path& path : shared_models(shared)) check_model_units(path.string());
}

TEST_CASE("a unit may span two files") {
  strata::test::ScratchDir dir;
  const std::string a = dir.pattern_file("a.bin", 3 << 20), b = dir.pattern_file("b.bin", (5 << 20) + 3);
  UnitDesc d;
  d.name = "split";
  d.ranges = {{1, 4097, 1 << 20}, {0, 100, 5000}, {1, (5 << 20) - 10, 13}};
  auto p = load_units({a, b}, {d});
  UnitLease lease(*p, 0);
  for (size_t i = 0; i < d.ranges.size(); ++i)
    CHECK(strata::test::pattern_mismatch(lease.range(i), d.ranges[i].offset, d.ranges[i].length) == -1);
}

TEST_CASE("load progress rises from the loading thread and ends at done == total") {
  strata::test::ScratchDir dir;
  const std::string model = write_synth(dir.file("synth.gguf"), 3);
  struct Call {
    uint64_t done, total;
    std::thread::id thread;
  };
  std::vector<Call> calls;
  auto progress = [&](uint64_t done, uint64_t total) { calls.push_back({done, total, std::this_thread::get_id()}); };
  auto m = Model::load(model, resident_untransformed(progress));
  const uint64_t total = unit_bytes(m->provider());
  REQUIRE(total > (16u << 20));
  REQUIRE(calls.size() >= 2);  // some while reading, one at the end
  CHECK(calls.back().done == total);
  for (size_t i = 0; i < calls.size(); ++i) {
    CAPTURE(i);
    CHECK(calls[i].total == total);
    CHECK(calls[i].thread == std::this_thread::get_id());
    CHECK(calls[i].done <= total);
    if (i > 0) {
      CHECK(calls[i].done > calls[i - 1].done);
      if (i + 1 < calls.size()) CHECK(calls[i].done - calls[i - 1].done >= (1u << 20));  // not per read
    }
  }
  // The same through LoadOptions::progress, the way the command line passes it.
  std::vector<uint64_t> dones;
  LoadOptions o;
  o.progress = [&](uint64_t done, uint64_t t) {
    CHECK(t == total);
    dones.push_back(done);
  };
  auto m2 = Model::load(model, o);
  REQUIRE(!dones.empty());
  CHECK(dones.back() == total);
  CHECK(std::is_sorted(dones.begin(), dones.end()));
}

TEST_CASE("a file shorter than its units is an error naming the file") {
  strata::test::ScratchDir dir;
  const uint64_t size = 8u << 20;
  const std::string pattern = dir.pattern_file("pattern.bin", size);
  const PatternUnits pu = pattern_units(size);
  fs::resize_file(pattern, size - (1u << 20) - 5);
  const std::string want = pattern + ": file ends at offset";
  for (const char* uring_off : {"0", "1"}) {
    CAPTURE(std::string(uring_off));
    EnvVar env("STRATA_URING_DISABLE", uring_off);
    CHECK_THROWS_WITH_AS(load_units({pattern}, pu.units), doctest::Contains(want.c_str()), strata::Error);
  }
  // A whole model cut short: whichever layer notices, the message names the file.
  const std::string model = write_synth(dir.file("synth.gguf"));
  fs::resize_file(model, fs::file_size(model) - 300000);
  CHECK_THROWS_WITH_AS(Model::load(model), doctest::Contains(model.c_str()), strata::Error);
}

TEST_CASE("transforms run once, in the order set, before any acquire returns, and only on their unit") {
  strata::test::ScratchDir dir;
  const uint64_t size = 8u << 20;
  const std::string pattern = dir.pattern_file("pattern.bin", size);
  const PatternUnits pu = pattern_units(size);
  auto p = load_units({pattern}, pu.units);
  const FileRange ra = pu.units[pu.overlap_a].ranges[0], rd = pu.units[pu.duplicate].ranges[0];
  std::atomic<int> runs{0};
  p->set_transform(pu.overlap_a, [&, n = ra.length](std::byte* data) {
    ++runs;
    for (uint64_t i = 0; i < n; ++i) data[i] ^= std::byte{0xff};
  });
  // Two on one unit: (b + 1) * 2 is not (b * 2) + 1.
  p->set_transform(pu.duplicate, [n = rd.length](std::byte* data) {
    for (uint64_t i = 0; i < n; ++i) data[i] = std::byte(uint8_t(uint8_t(data[i]) + 1));
  });
  p->set_transform(pu.duplicate, [n = rd.length](std::byte* data) {
    for (uint64_t i = 0; i < n; ++i) data[i] = std::byte(uint8_t(uint8_t(data[i]) * 2));
  });
  // The first acquires come from many threads at once.
  std::atomic<int> wrong{0};
  tbb::parallel_for(0, 64, [&](int t) {
    const UnitId id = t % 2 ? pu.overlap_a : pu.duplicate;
    UnitLease lease(*p, id);
    const FileRange& r = id == pu.overlap_a ? ra : rd;
    for (uint64_t i = 0; i < r.length; ++i) {
      const uint8_t b = strata::test::pattern_byte(r.offset + i);
      const uint8_t want = id == pu.overlap_a ? uint8_t(b ^ 0xff) : uint8_t(uint8_t(b + 1) * 2);
      if (uint8_t(lease.range(0)[i]) != want) {
        ++wrong;
        break;
      }
    }
  });
  CHECK(wrong == 0);
  CHECK(runs == 1);
  CHECK(p->stats().transforms == 3);
  // Units sharing those bytes in the file keep the file's bytes.
  UnitLease b(*p, pu.overlap_b);
  const FileRange& rb = pu.units[pu.overlap_b].ranges[0];
  CHECK(strata::test::pattern_mismatch(b.range(0), rb.offset, rb.length) == -1);
}

namespace {

// Logits of every position of a short prompt.
std::vector<float> logits(Model& m) {
  const std::vector<int32_t> tokens = {1, 5, 17, 100, 200, 7, 42, 3};
  auto kv = m.new_cache(16);
  strata::models::BatchItem item{&kv, tokens, true};
  strata::models::ForwardOutput out;
  m.forward(std::span<strata::models::BatchItem>(&item, 1), out);
  return out.logits;
}

void check_same_logits_as_streamed(const std::string& path) {
  CAPTURE(path);
  auto resident = Model::load(path);
  const std::vector<float> want = logits(*resident);
  strata::runtime::StreamingOptions so;
  // Room for everything: the same bytes, read another way (per unit into the pinned pool).
  so.memory_budget = resident->provider().resident_bytes() * 2 + (64u << 20);
  LoadOptions o;
  o.provider = [so](const std::vector<std::string>& paths) { return strata::runtime::make_weight_provider(paths, so); };
  auto streamed = Model::load(path, o);
  REQUIRE(streamed->provider().stats().budget_bytes > 0);  // really the streaming provider
  const std::vector<float> got = logits(*streamed);
  REQUIRE(got.size() == want.size());
  CHECK(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)) == 0);  // bit-identical
}

}  // namespace

TEST_CASE("a resident model gives bit-identical logits to the same model streamed from disk") {
  strata::test::ScratchDir dir;
  check_same_logits_as_streamed(write_synth(dir.file("synth.gguf")));
  const fs::path shared = strata::test::shared_dir();
  if (shared.empty()) {
    MESSAGE("reference models skipped: ../shared not found (set STRATA_SHARED to its path)");
    return;
  }
  for (const fs::path& path : shared_models(shared)) check_same_logits_as_streamed(path.string());
}
