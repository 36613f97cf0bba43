// The streaming provider over a scripted read backend (StreamingOptions::wrap_backend), with units
// registered by hand, no model and no ../shared: acquire returns each range's bytes at its
// range_offset; a budget far below the units' total forces evictions and is never exceeded; hits
// and misses are counted per kind; a read needed now goes out before speculative ones queued
// earlier; a failed read is a strata::Error naming the unit. And, over the real backends, a unit
// striped across a 3-part manifest reads back as the file.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/ranges.h>

#include "runtime/streaming_provider.h"
#include "runtime/weight_provider.h"
#include "storage/error.h"
#include "storage/file.h"
#include "storage/placement.h"
#include "tests/storage/read_test_support.h"

namespace fs = std::filesystem;
using strata::runtime::FileRange;
using strata::runtime::Need;
using strata::runtime::StreamingOptions;
using strata::runtime::UnitDesc;
using strata::runtime::UnitId;
using strata::runtime::UnitKind;
using strata::runtime::UnitLease;
using strata::runtime::WeightProvider;
using strata::storage::Completion;
using strata::storage::ReadBackend;
using strata::storage::ReadRequest;
using strata::test::pattern_byte;
using strata::test::ScratchDir;

namespace {

// The bytes the fake serves for file number `f` of the provider (its paths' order) at `offset`.
uint8_t fake_byte(size_t f, uint64_t offset) { return pattern_byte(offset + (uint64_t(f) << 40)); }

struct Issued {
  std::string path;
  uint64_t offset = 0, length = 0;
  uint8_t priority = 0;
  uint64_t user_data = 0;
};

// A scripted backend: requests complete at once (auto) or when the test releases them; each
// is served from fake_byte(file number, offset) up to the file's size (the files on disk are
// sparse: only their sizes matter), or fails where `fail` says.
struct Script {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> paths;  // the provider's files, numbering fake_byte's files
  std::vector<Issued> log;
  std::map<uint64_t, ReadRequest> held;
  std::map<uint64_t, std::string> held_path;
  std::deque<Completion> done;
  bool auto_complete = true;
  std::function<std::optional<std::string>(const std::string& path, uint64_t offset, uint64_t length)> fail;

  // Under mu.
  void complete_locked(uint64_t ud) {
    auto it = held.find(ud);
    if (it == held.end()) return;
    const ReadRequest r = it->second;
    const std::string path = held_path.at(ud);
    held.erase(it);
    held_path.erase(ud);
    Completion c;
    c.user_data = ud;
    if (auto msg = fail ? fail(path, r.offset, r.length) : std::nullopt) {
      c.error = -EIO;
      c.message = *msg;
    } else {
      const size_t f = std::find(paths.begin(), paths.end(), path) - paths.begin();
      REQUIRE(f < paths.size());
      const uint64_t size = fs::file_size(path);
      c.bytes = r.offset >= size ? 0 : std::min(r.length, size - r.offset);
      auto* dst = static_cast<uint8_t*>(r.dst);
      for (uint64_t i = 0; i < c.bytes; ++i) dst[i] = fake_byte(f, r.offset + i);
    }
    done.push_back(std::move(c));
  }
  void release_all() {
    std::lock_guard lk(mu);
    while (!held.empty()) complete_locked(held.begin()->first);
    cv.notify_all();
  }
  void set_auto(bool on) {
    std::lock_guard lk(mu);
    auto_complete = on;
  }
  bool wait_log(size_t n, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
    std::unique_lock lk(mu);
    return cv.wait_for(lk, limit, [&] { return log.size() >= n; });
  }
  std::vector<Issued> snapshot() {
    std::lock_guard lk(mu);
    return log;
  }
};

class Fake final : public ReadBackend {
 public:
  explicit Fake(Script& s) : s_(s) {}
  ~Fake() override {
    // Reads still held land now: their buffers belong to the provider's pool until we return.
    s_.release_all();
  }
  const char* name() const override { return "fake"; }
  size_t alignment() const override { return 4096; }
  uint32_t add_file(const std::string& path) override {
    std::lock_guard lk(s_.mu);
    paths_.push_back(path);
    return static_cast<uint32_t>(paths_.size() - 1);
  }
  uint64_t file_size(uint32_t f) const override { return fs::file_size(paths_.at(f)); }
  void submit(std::span<const ReadRequest> reqs) override {
    std::lock_guard lk(s_.mu);
    for (const ReadRequest& r : reqs) {
      s_.log.push_back({paths_.at(r.file), r.offset, r.length, r.priority, r.user_data});
      s_.held[r.user_data] = r;
      s_.held_path[r.user_data] = paths_.at(r.file);
      if (s_.auto_complete) s_.complete_locked(r.user_data);
    }
    s_.cv.notify_all();
  }
  size_t reap(std::vector<Completion>& out, bool wait, std::chrono::milliseconds timeout) override {
    std::unique_lock lk(s_.mu);
    if (wait && s_.done.empty()) s_.cv.wait_for(lk, timeout, [&] { return !s_.done.empty(); });
    const size_t n = s_.done.size();
    for (auto& c : s_.done) out.push_back(std::move(c));
    s_.done.clear();
    return n;
  }
  void cancel(uint64_t) override {}
  size_t in_flight() const override {
    std::lock_guard lk(s_.mu);
    return s_.held.size() + s_.done.size();
  }
  strata::storage::IoStats stats() const override { return {}; }

 private:
  Script& s_;
  std::vector<std::string> paths_;
};

// Sparse files of the given sizes (the fake ignores their content).
std::vector<std::string> sparse_files(const ScratchDir& dir, const std::vector<uint64_t>& sizes) {
  std::vector<std::string> paths;
  for (size_t i = 0; i < sizes.size(); ++i) {
    paths.push_back(dir.file(fmt::format("f{}.gguf", i)));
    { auto f = strata::storage::File::create(paths.back()); }
    fs::resize_file(paths.back(), sizes[i]);
  }
  return paths;
}

StreamingOptions fake_options(Script& s, uint64_t budget) {
  StreamingOptions so;
  so.io = "pread";
  so.memory_budget = budget;
  so.wrap_backend = [&s](std::unique_ptr<ReadBackend>) -> std::unique_ptr<ReadBackend> { return std::make_unique<Fake>(s); };
  return so;
}

UnitDesc unit(std::string name, UnitKind kind, int layer, std::vector<FileRange> ranges, int expert = -1) {
  UnitDesc d;
  d.name = std::move(name);
  d.kind = kind;
  d.layer = layer;
  d.expert = expert;
  d.ranges = std::move(ranges);
  return d;
}

// The unit's bytes as the provider returns them equal `byte(file, offset)` at each range.
template <class ByteFn>
void check_bytes(const WeightProvider& p, UnitId id, const std::byte* data, ByteFn byte) {
  const UnitDesc& d = p.unit(id);
  CAPTURE(d.name);
  for (size_t i = 0; i < d.ranges.size(); ++i) {
    const FileRange& r = d.ranges[i];
    const auto* got = reinterpret_cast<const uint8_t*>(data + p.range_offset(id, i));
    for (uint64_t b = 0; b < r.length; ++b)
      if (got[b] != byte(r.file, r.offset + b)) {
        FAIL_CHECK("range ", i, " byte ", b, " (file ", r.file, " offset ", r.offset + b, ") differs");
        return;
      }
  }
}

// A small MoE-shaped unit set over two files: 2 pinned units, then per layer one dense unit and
// 4 experts of 3 ranges each (gate and up in file 0, down in file 1); unaligned offsets.
struct Layout {
  std::vector<UnitId> pinned, dense;
  std::vector<std::vector<UnitId>> experts;  // [layer][expert]
};
Layout register_units(WeightProvider& p, int layers) {
  Layout l;
  l.pinned.push_back(p.add_unit(unit("token_embd.weight", UnitKind::Pinned, -1, {{0, 1000, 3000}})));
  l.pinned.push_back(p.add_unit(unit("output_norm.weight", UnitKind::Pinned, -1, {{1, 777, 333}})));
  uint64_t a = 40000 + 123, b = 9000 + 5;
  for (int L = 0; L < layers; ++L) {
    l.dense.push_back(p.add_unit(unit(fmt::format("blk.{}.attn", L), UnitKind::Dense, L, {{0, a, 30000}})));
    a += 30000 + 17;
    l.experts.emplace_back();
    for (int e = 0; e < 4; ++e) {
      l.experts.back().push_back(p.add_unit(unit(fmt::format("blk.{}.ffn_exps[{}]", L, e), UnitKind::Expert, L,
                                                 {{0, a, 9000}, {0, a + 9000, 9000}, {1, b, 9001}}, e)));
      a += 18000 + 300;
      b += 9001 + 11;
    }
  }
  return l;
}

}  // namespace

TEST_CASE("streaming (fake backend): acquire returns each range's bytes; a small budget evicts and is never exceeded") {
  ScratchDir dir;
  Script s;
  s.paths = sparse_files(dir, {2 << 20, 1 << 20});
  const uint64_t budget = 256 << 10;  // about a fifth of the units' bytes
  auto p = strata::runtime::make_streaming_provider(s.paths, fake_options(s, budget));
  const int layers = 4;
  const Layout l = register_units(*p, layers);
  p->finalize();
  CHECK(p->unit_count() == 2 + layers * 5);
  CHECK(p->stats().io == "fake");
  for (UnitId id : l.pinned) {
    UnitLease lease(*p, id);
    check_bytes(*p, id, lease.data(), fake_byte);
  }
  std::mt19937 rng(5);
  for (int step = 0; step < 6; ++step) {
    p->at_layer(-1);
    for (int L = 0; L < layers; ++L) {
      p->at_layer(L);
      // The next layer's dense unit ahead, some of its experts on a guess.
      if (L + 1 < layers) {
        p->prefetch(&l.dense[L + 1], 1, Need::Ahead);
        const UnitId guess[] = {l.experts[L + 1][rng() % 4], l.experts[L + 1][rng() % 4]};
        p->prefetch(guess, 2, Need::Speculative);
      }
      {
        UnitLease d(*p, l.dense[L]);
        check_bytes(*p, l.dense[L], d.data(), fake_byte);
      }
      // Two experts, leased together (as a layer's jobs are).
      const UnitId e0 = l.experts[L][rng() % 4], e1 = l.experts[L][(step + L) % 4];
      UnitLease x(*p, e0);
      UnitLease y(*p, e1);
      check_bytes(*p, e0, x.data(), fake_byte);
      check_bytes(*p, e1, y.data(), fake_byte);
      // Range offsets: every range starts inside the slot, in order, where its bytes are.
      CHECK(p->range_offset(e0, 0) < p->range_offset(e0, 1));
      CHECK(p->range_offset(e0, 1) < p->range_offset(e0, 2));
      CHECK(p->range_offset(e0, 0) == (p->unit(e0).ranges[0].offset % 4096));
    }
  }
  const auto st = p->stats();
  CHECK(st.budget_bytes <= budget);
  CHECK(st.peak_resident_bytes <= st.budget_bytes);
  CHECK(st.peak_resident_bytes > budget / 2);
  CHECK(st.evictions > 0);
  CHECK(st.resident_bytes <= budget);
  CHECK(p->resident_bytes() == st.resident_bytes);
  CHECK(st.dense_misses + st.dense_hits == 6 * layers);
  CHECK(st.expert_misses + st.expert_hits == 6 * layers * 2);
  CHECK(st.expert_misses > 0);
  CHECK(st.bytes_read > st.budget_bytes);  // units were read more than once
  REQUIRE(st.devices.size() == 1);
}

TEST_CASE("streaming (fake backend): hits and misses are counted per kind, pinned units not at all") {
  ScratchDir dir;
  Script s;
  s.paths = sparse_files(dir, {2 << 20, 1 << 20});
  auto p = strata::runtime::make_streaming_provider(s.paths, fake_options(s, 4 << 20));  // everything fits
  const Layout l = register_units(*p, 2);
  p->finalize();
  auto check = [&](uint64_t dh, uint64_t dm, uint64_t eh, uint64_t em) {
    const auto st = p->stats();
    CHECK(st.dense_hits == dh);
    CHECK(st.dense_misses == dm);
    CHECK(st.expert_hits == eh);
    CHECK(st.expert_misses == em);
  };
  check(0, 0, 0, 0);
  { UnitLease x(*p, l.pinned[0]); }
  check(0, 0, 0, 0);
  { UnitLease x(*p, l.dense[0]); }
  check(0, 1, 0, 0);
  { UnitLease x(*p, l.dense[0]); }
  check(1, 1, 0, 0);
  {
    UnitLease x(*p, l.experts[1][2]);
    check_bytes(*p, l.experts[1][2], x.data(), fake_byte);
  }
  check(1, 1, 0, 1);
  { UnitLease x(*p, l.experts[1][2]); }
  { UnitLease x(*p, l.experts[1][2]); }
  check(1, 1, 2, 1);
  // A prefetched unit that landed before its acquire is a hit.
  const uint64_t resident = p->resident_bytes();
  p->prefetch(&l.experts[0][3], 1, Need::Speculative);
  for (int i = 0; i < 2500 && p->resident_bytes() == resident; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  REQUIRE(p->resident_bytes() > resident);
  { UnitLease x(*p, l.experts[0][3]); }
  check(1, 1, 3, 1);
  const auto st = p->stats();
  CHECK(st.prefetch_issued == 1);
  CHECK(st.prefetch_used == 1);
  CHECK(st.evictions == 0);
}

TEST_CASE("streaming (fake backend): a read needed now goes out before speculative ones queued earlier") {
  ScratchDir dir;
  Script s;
  s.paths = sparse_files(dir, {2 << 20, 1 << 20});
  StreamingOptions so = fake_options(s, 4 << 20);
  so.max_inflight_bytes = 1;  // one unit's reads in flight at a time: the rest wait in the queues
  auto p = strata::runtime::make_streaming_provider(s.paths, so);
  const Layout l = register_units(*p, 3);
  p->finalize();  // loads the pinned units (the fake completes at once until told otherwise)
  s.set_auto(false);
  const size_t before = s.snapshot().size();

  // Three guesses, then a unit needed now.
  const UnitId spec[] = {l.experts[2][0], l.experts[2][1], l.experts[2][2]};
  p->prefetch(spec, 3, Need::Speculative);
  REQUIRE(s.wait_log(before + 3));  // the first guess's three reads are out; the others wait
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(s.snapshot().size() == before + 3);
  std::atomic<bool> got{false};
  std::string error;
  std::thread user([&] {
    try {
      UnitLease x(*p, l.dense[1]);
      check_bytes(*p, l.dense[1], x.data(), fake_byte);
    } catch (const std::exception& e) {
      error = e.what();
    }
    got = true;
  });
  // The acquire has asked (it counts a miss) and waits.
  for (int i = 0; i < 500 && p->stats().dense_misses == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  CHECK(p->stats().dense_misses == 1);
  CHECK(!got);
  // Let the reads land one unit at a time.
  s.set_auto(true);
  s.release_all();
  user.join();
  CHECK(error.empty());
  // Everything queued goes out in the end.
  REQUIRE(s.wait_log(before + 3 + 1 + 3 + 3));
  const auto log = s.snapshot();
  auto first_read = [&](UnitId id) { return p->unit(id).ranges[0].offset / 4096 * 4096; };
  std::vector<uint64_t> units;  // the units' first reads, in the order they went out
  for (size_t i = before; i < log.size(); ++i) {
    if (log[i].offset == first_read(spec[0]) || log[i].offset == first_read(spec[1]) || log[i].offset == first_read(spec[2]) ||
        log[i].offset == first_read(l.dense[1]))
      if (log[i].path == s.paths[0]) units.push_back(log[i].offset);
  }
  INFO("first reads in issue order: ", fmt::format("{}", fmt::join(units, " ")));
  CHECK(units == std::vector<uint64_t>{first_read(spec[0]), first_read(l.dense[1]), first_read(spec[1]), first_read(spec[2])});
  for (size_t i = before; i < log.size(); ++i) {
    CAPTURE(i);
    const bool dense = log[i].offset == first_read(l.dense[1]) && log[i].path == s.paths[0];
    CHECK(log[i].priority == (dense ? 0 : 2));
  }
}

TEST_CASE("streaming (fake backend): a failed read is an error naming the unit") {
  ScratchDir dir;
  Script s;
  s.paths = sparse_files(dir, {2 << 20, 1 << 20});
  SUBCASE("a streamed unit") {
    auto p = strata::runtime::make_streaming_provider(s.paths, fake_options(s, 256 << 10));
    const Layout l = register_units(*p, 3);
    p->finalize();
    const FileRange bad = p->unit(l.experts[1][2]).ranges[2];  // its down slice, in file 1
    {
      std::lock_guard lk(s.mu);
      s.fail = [&](const std::string& path, uint64_t off, uint64_t len) -> std::optional<std::string> {
        if (path == s.paths[1] && off < bad.offset + bad.length && bad.offset < off + len)
          return fmt::format("{}: injected EIO at offset {}", path, off);
        return std::nullopt;
      };
    }
    CHECK_THROWS_WITH_AS(UnitLease(*p, l.experts[1][2]), doctest::Contains("blk.1.ffn_exps[2]"), strata::Error);
    // Asked again: the same error, not a hang, and the message says what the backend said.
    CHECK_THROWS_WITH_AS(UnitLease(*p, l.experts[1][2]), doctest::Contains("injected EIO"), strata::Error);
    // Units whose reads do not touch the bad bytes are fine (experts 1 and 3 of layer 1 share
    // a 4 KiB block with it).
    UnitLease ok(*p, l.experts[2][3]);
    check_bytes(*p, l.experts[2][3], ok.data(), fake_byte);
    UnitLease d(*p, l.dense[2]);
    check_bytes(*p, l.dense[2], d.data(), fake_byte);
  }
  SUBCASE("a pinned unit fails finalize") {
    s.fail = [&](const std::string& path, uint64_t off, uint64_t) -> std::optional<std::string> {
      if (path == s.paths[1] && off == 0) return path + ": injected EIO at offset 0";
      return std::nullopt;
    };
    auto p = strata::runtime::make_streaming_provider(s.paths, fake_options(s, 256 << 10));
    register_units(*p, 1);
    CHECK_THROWS_WITH_AS(p->finalize(), doctest::Contains("output_norm.weight"), strata::Error);
  }
  SUBCASE("a unit past the end of its file") {
    auto p = strata::runtime::make_streaming_provider(s.paths, fake_options(s, 256 << 10));
    const UnitId u = p->add_unit(unit("blk.0.past_end", UnitKind::Dense, 0, {{1, (1 << 20) - 100, 5000}}));
    p->finalize();
    CHECK_THROWS_WITH_AS(UnitLease(*p, u), doctest::Contains("file ends before weight unit 'blk.0.past_end'"), strata::Error);
  }
}

TEST_CASE("streaming: units striped over a 3-part manifest read back as the file") {
  ScratchDir d0, d1, d2;
  const uint64_t size = (3 << 20) + 5000, stripe = 64 << 10, shift = 12345;
  // The logical file: pattern bytes shifted (so it differs from the plain file beside it).
  auto logical = [&](uint64_t i) { return pattern_byte(i + shift); };
  std::vector<std::string> parts;
  {
    std::vector<strata::storage::File> fs_parts;
    const std::string dirs[] = {d0.file(""), d1.file(""), d2.file("")};
    for (int j = 0; j < 3; ++j) {
      parts.push_back((fs::path(dirs[j]) / fmt::format("m.gguf.stripe-{}-of-3", j + 1)).string());
      fs_parts.push_back(strata::storage::File::create(parts.back()));
    }
    std::vector<uint8_t> buf(stripe);
    for (uint64_t k = 0; k * stripe < size; ++k) {
      const uint64_t take = std::min(stripe, size - k * stripe);
      for (uint64_t i = 0; i < take; ++i) buf[i] = logical(k * stripe + i);
      fs_parts[k % 3].write_all(buf.data(), take);
    }
  }
  strata::storage::Manifest m;
  m.files.push_back({"m.gguf", size, stripe, parts});
  const std::string man = d0.file("m.strata.json");
  m.write(man);
  const std::string plain = d1.pattern_file("plain.gguf", 1 << 20);
  auto byte = [&](uint32_t file, uint64_t off) { return file == 0 ? logical(off) : pattern_byte(off); };

  for (const char* io : {"uring", "pread"}) {
    CAPTURE(std::string(io));
    StreamingOptions so;
    so.io = io;
    so.memory_budget = 1 << 20;
    auto p = strata::runtime::make_streaming_provider({man, plain}, so);
    std::vector<UnitId> ids;
    ids.push_back(p->add_unit(unit("pinned", UnitKind::Pinned, -1, {{0, stripe - 100, 300}, {1, 5, 10}})));
    // Across one boundary, across four stripes (all three parts), ending in the uneven tail.
    ids.push_back(p->add_unit(unit("cross1", UnitKind::Dense, 0, {{0, 2 * stripe - 1000, 3000}})));
    ids.push_back(p->add_unit(unit("cross4", UnitKind::Dense, 1, {{0, 5 * stripe + 77, 3 * stripe + 500}})));
    ids.push_back(p->add_unit(unit("tail", UnitKind::Dense, 2, {{0, size - 70000, 70000}})));
    for (int e = 0; e < 12; ++e)
      ids.push_back(p->add_unit(unit(fmt::format("blk.{}.exp[{}]", e % 3, e), UnitKind::Expert, e % 3,
                                     {{0, uint64_t(e) * 250000 + 333, 40000}, {1, uint64_t(e) * 30000 + 1, 20000},
                                      {0, uint64_t(e) * 250000 + 100000, 60000}},
                                     e)));
    p->finalize();
    for (int round = 0; round < 3; ++round) {
      p->at_layer(-1);
      for (UnitId id : ids) {
        UnitLease x(*p, id);
        check_bytes(*p, id, x.data(), byte);
      }
    }
    const auto st = p->stats();
    CHECK(st.peak_resident_bytes <= st.budget_bytes);
    CHECK(st.evictions > 0);
    REQUIRE(st.devices.size() == 1);  // three folders, one filesystem
    CHECK(st.devices[0].paths.size() == 4);
  }
}
