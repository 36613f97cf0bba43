// The device array (make_device_array): over a plain file and over a striped manifest, random
// aligned reads give exactly the file's bytes (a short count past the end), every request
// completes exactly once, cancellation works; with a scripted inner backend (put in through the
// BackendWrapper) pieces are split at stripe boundaries, a drive's queue is served most urgent
// first once its in-flight limit is reached, and one failed piece fails its request with the
// inner backend's message. device_stats has one entry per drive.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/ranges.h>

#include "storage/aligned_buffer.h"
#include "storage/error.h"
#include "storage/file.h"
#include "storage/placement.h"
#include "storage/read_backend.h"
#include "tests/storage/read_test_support.h"

namespace fs = std::filesystem;
using strata::storage::AlignedBuffer;
using strata::storage::BackendOptions;
using strata::storage::Completion;
using strata::storage::make_device_array;
using strata::storage::Manifest;
using strata::storage::ManifestFile;
using strata::storage::ReadBackend;
using strata::storage::ReadRequest;
using namespace strata::test;

namespace {

const char* const kKinds[] = {"uring", "pread", "mmap"};

uint64_t expected_bytes(uint64_t size, uint64_t off, uint64_t len) { return off >= size ? 0 : std::min(len, size - off); }

// RAID-0 by hand: the pattern file's stripe k goes to part k mod n (parts in dirs[j]).
std::vector<std::string> stripe_pattern(uint64_t size, uint64_t stripe, const std::vector<std::string>& dirs,
                                        const std::string& name) {
  const size_t n = dirs.size();
  std::vector<std::string> paths;
  std::vector<strata::storage::File> files;
  for (size_t j = 0; j < n; ++j) {
    paths.push_back((fs::path(dirs[j]) / fmt::format("{}.stripe-{}-of-{}", name, j + 1, n)).string());
    files.push_back(strata::storage::File::create(paths.back()));
  }
  std::vector<uint8_t> buf(stripe);
  for (uint64_t k = 0; k * stripe < size; ++k) {
    const uint64_t take = std::min<uint64_t>(stripe, size - k * stripe);
    for (uint64_t i = 0; i < take; ++i) buf[i] = pattern_byte(k * stripe + i);
    files[k % n].write_all(buf.data(), take);
  }
  return paths;
}

std::string write_manifest(const std::string& path, const std::string& name, uint64_t size, uint64_t stripe,
                           std::vector<std::string> parts) {
  Manifest m;
  m.files.push_back(ManifestFile{name, size, stripe, std::move(parts)});
  m.write(path);
  return path;
}

// A scratch folder on another filesystem than /var/tmp (a second "drive"), when there is one.
std::optional<std::string> other_device_dir(const std::string& than) {
  struct stat a {}, b {};
  if (::stat(than.c_str(), &a) != 0 || ::stat("/dev/shm", &b) != 0 || a.st_dev == b.st_dev) return std::nullopt;
  std::string tmpl = "/dev/shm/strata-device-array-XXXXXX";
  if (!::mkdtemp(tmpl.data())) return std::nullopt;
  return tmpl;
}

// ---- a scripted inner backend ------------------------------------------------------------------

struct Issued {
  size_t backend = 0;  // which fake (one per drive)
  std::string path;
  uint64_t offset = 0, length = 0;
  uint8_t priority = 0;
  uint64_t user_data = 0;
};

class Fake;

// Shared by every fake the wrapper makes. Requests complete only when the test releases them
// (or at once, in auto mode), reading the part's real bytes with pread; `fail` may turn one into
// an error.
struct Script {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Issued> log;                 // in the order the fakes received them
  std::vector<uint64_t> cancels;           // inner user_data cancelled
  std::vector<Fake*> fakes;
  bool auto_complete = false;
  std::function<std::optional<std::string>(const std::string& path, uint64_t offset)> fail;
  int fail_errno = EIO;  // what `fail` completes with

  // Waits until at least n requests have been issued to the fakes.
  bool wait_issued(size_t n, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
    std::unique_lock lk(mu);
    return cv.wait_for(lk, limit, [&] { return log.size() >= n; });
  }
  size_t issued() {
    std::lock_guard lk(mu);
    return log.size();
  }
  std::vector<Issued> snapshot() {
    std::lock_guard lk(mu);
    return log;
  }
  // Completes the held request issued as log[i].
  void release(size_t i);
  void release_all();
  void set_auto(bool on);
};

class Fake final : public ReadBackend {
 public:
  Fake(Script& s, size_t index) : s_(s), index_(index) {}
  ~Fake() override {
    for (int fd : fds_) ::close(fd);
  }
  const char* name() const override { return "fake"; }
  size_t alignment() const override { return 4096; }
  uint32_t add_file(const std::string& path) override {
    std::lock_guard lk(s_.mu);
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) strata::fail("{}: fake cannot open", path);
    fds_.push_back(fd);
    paths_.push_back(path);
    return static_cast<uint32_t>(paths_.size() - 1);
  }
  uint64_t file_size(uint32_t f) const override { return fs::file_size(paths_.at(f)); }
  void submit(std::span<const ReadRequest> reqs) override {
    std::lock_guard lk(s_.mu);
    for (const ReadRequest& r : reqs) {
      s_.log.push_back({index_, paths_.at(r.file), r.offset, r.length, r.priority, r.user_data});
      held_[r.user_data] = r;
      if (s_.auto_complete) complete_locked(r.user_data, 0);
    }
    s_.cv.notify_all();
  }
  size_t reap(std::vector<Completion>& out, bool wait, std::chrono::milliseconds timeout) override {
    std::unique_lock lk(s_.mu);
    if (wait && done_.empty()) s_.cv.wait_for(lk, timeout, [&] { return !done_.empty(); });
    const size_t n = done_.size();
    for (auto& c : done_) out.push_back(std::move(c));
    done_.clear();
    return n;
  }
  void cancel(uint64_t user_data) override {
    std::lock_guard lk(s_.mu);
    s_.cancels.push_back(user_data);
    if (held_.count(user_data)) complete_locked(user_data, -ECANCELED);
    s_.cv.notify_all();
  }
  size_t in_flight() const override { return held_.size() + done_.size(); }
  strata::storage::IoStats stats() const override { return {}; }

  // Under s_.mu.
  void complete_locked(uint64_t user_data, int error) {
    auto it = held_.find(user_data);
    if (it == held_.end()) return;
    const ReadRequest r = it->second;
    held_.erase(it);
    Completion c;
    c.user_data = r.user_data;
    const std::string& path = paths_.at(r.file);
    std::optional<std::string> injected = error == 0 && s_.fail ? s_.fail(path, r.offset) : std::nullopt;
    if (error) {
      c.error = error;
      c.message = "cancelled";
    } else if (injected) {
      c.error = -s_.fail_errno;
      c.message = *injected;
    } else {
      const ssize_t got = ::pread(fds_.at(r.file), r.dst, r.length, static_cast<off_t>(r.offset));
      if (got < 0) {
        c.error = -errno;
        c.message = path + ": pread failed";
      } else {
        c.bytes = static_cast<uint64_t>(got);
      }
    }
    done_.push_back(std::move(c));
  }

 private:
  Script& s_;
  size_t index_;
  std::vector<int> fds_;
  std::vector<std::string> paths_;
  std::map<uint64_t, ReadRequest> held_;
  std::deque<Completion> done_;
};

void Script::release(size_t i) {
  std::lock_guard lk(mu);
  const Issued is = log.at(i);
  fakes.at(is.backend)->complete_locked(is.user_data, 0);
  cv.notify_all();
}
void Script::release_all() {
  std::lock_guard lk(mu);
  for (const Issued& is : log) fakes.at(is.backend)->complete_locked(is.user_data, 0);
  cv.notify_all();
}
void Script::set_auto(bool on) {
  std::lock_guard lk(mu);
  auto_complete = on;
}

// The wrapper that replaces each drive's real backend by a fake of `s`.
strata::storage::BackendWrapper fake_wrapper(Script& s) {
  return [&s](std::unique_ptr<ReadBackend>) -> std::unique_ptr<ReadBackend> {
    std::lock_guard lk(s.mu);
    auto f = std::make_unique<Fake>(s, s.fakes.size());
    s.fakes.push_back(f.get());
    return f;
  };
}

// A wrapper that forwards to the real backend and records what each inner backend was asked.
struct Recorded {
  std::mutex mu;
  std::vector<std::vector<std::pair<std::string, ReadRequest>>> per_backend;  // (part path, request)
};
class Recorder final : public ReadBackend {
 public:
  Recorder(std::unique_ptr<ReadBackend> inner, Recorded& rec, size_t index) : in_(std::move(inner)), rec_(rec), index_(index) {}
  const char* name() const override { return in_->name(); }
  size_t alignment() const override { return in_->alignment(); }
  uint32_t add_file(const std::string& path) override {
    const uint32_t id = in_->add_file(path);
    std::lock_guard lk(rec_.mu);
    if (paths_.size() <= id) paths_.resize(id + 1);
    paths_[id] = path;
    return id;
  }
  uint64_t file_size(uint32_t f) const override { return in_->file_size(f); }
  void register_buffer(void* b, size_t n) override { in_->register_buffer(b, n); }
  void submit(std::span<const ReadRequest> reqs) override {
    {
      std::lock_guard lk(rec_.mu);
      for (const ReadRequest& r : reqs) rec_.per_backend[index_].push_back({paths_.at(r.file), r});
    }
    in_->submit(reqs);
  }
  size_t reap(std::vector<Completion>& out, bool wait, std::chrono::milliseconds t) override { return in_->reap(out, wait, t); }
  void cancel(uint64_t u) override { in_->cancel(u); }
  size_t in_flight() const override { return in_->in_flight(); }
  strata::storage::IoStats stats() const override { return in_->stats(); }

 private:
  std::unique_ptr<ReadBackend> in_;
  Recorded& rec_;
  size_t index_;
  std::vector<std::string> paths_;
};
strata::storage::BackendWrapper recording_wrapper(Recorded& rec) {
  return [&rec](std::unique_ptr<ReadBackend> inner) -> std::unique_ptr<ReadBackend> {
    std::lock_guard lk(rec.mu);
    rec.per_backend.emplace_back();
    return std::make_unique<Recorder>(std::move(inner), rec, rec.per_backend.size() - 1);
  };
}

BackendOptions small_opts() {
  BackendOptions o;
  o.queue_depth = 4;
  o.chunk_bytes = 64 << 10;
  o.threads = 2;
  return o;
}

// Random 4 KiB-aligned reads of a logical file of `size` bytes (file id f), some crossing many
// stripes, some at or past the end; checks every byte and that each request completes once.
void random_reads(ReadBackend& b, uint32_t f, uint64_t size, uint64_t seed, int n = 80) {
  std::mt19937_64 rng(seed);
  std::vector<AlignedBuffer> bufs;
  std::vector<ReadRequest> reqs;
  for (int i = 0; i < n; ++i) {
    ReadRequest r;
    r.file = f;
    r.offset = (rng() % ((size >> 12) + 3)) << 12;  // sometimes at or past the end
    r.length = (1 + rng() % 64) << 12;              // up to 256 KiB: up to 65 stripes of 4 KiB
    if (i == 0) r.offset = 0, r.length = (size + 8191) / 4096 * 4096;  // the whole file and a bit
    bufs.emplace_back(r.length);
    std::memset(bufs.back().data(), 0xee, r.length);
    r.dst = bufs.back().data();
    r.user_data = 500 + i;
    r.priority = static_cast<uint8_t>(rng() % 3);
    reqs.push_back(r);
  }
  b.submit(reqs);
  auto done = reap_all(b, reqs.size());
  REQUIRE(done.size() == reqs.size());
  // Nothing more arrives: every request completed exactly once.
  std::vector<Completion> extra;
  b.reap(extra, true, std::chrono::milliseconds(50));
  CHECK(extra.empty());
  CHECK(b.in_flight() == 0);
  for (const auto& [ud, count] : completion_counts(done)) {
    CHECK(ud >= 500);
    CHECK(ud < 500 + uint64_t(n));
    CHECK(count == 1);
  }
  for (const Completion& c : done) {
    const ReadRequest& r = reqs[c.user_data - 500];
    CAPTURE(r.offset);
    CAPTURE(r.length);
    CHECK(c.error == 0);
    CHECK(c.bytes == expected_bytes(size, r.offset, r.length));
    CHECK(pattern_mismatch(r.dst, r.offset, c.bytes) == -1);
  }
}

}  // namespace

TEST_CASE("device array: a plain file reads as it is, on one device") {
  ScratchDir dir;
  const uint64_t size = (2 << 20) + 3000;
  const std::string path = dir.pattern_file("plain.bin", size);
  for (const std::string kind : kKinds) {
    CAPTURE(kind);
    auto b = make_device_array(kind, small_opts());
    const uint32_t f = b->add_file(path);
    CHECK(b->file_size(f) == size);
    CHECK(std::string(b->name()) == kind);
    random_reads(*b, f, size, 1);
    const auto ds = b->device_stats();
    REQUIRE(ds.size() == 1);
    CHECK(ds[0].paths == std::vector<std::string>{path});
    CHECK(ds[0].io.ops >= 80);  // the inner backend's own figures
    const auto s = b->stats();
    CHECK(s.ops == 80);
    CHECK(s.errors == 0);
  }
  CHECK_THROWS_WITH_AS(make_device_array("floppy"), doctest::Contains("floppy"), strata::Error);
}

TEST_CASE("device array: a 3-part striped manifest reads back as the file") {
  ScratchDir d0, d1, d2;
  const uint64_t size = (1536 << 10) + 4096 * 3 + 700;  // an uneven tail
  for (const uint64_t stripe : {uint64_t(4096), uint64_t(64 << 10)}) {
    CAPTURE(stripe);
    const auto parts = stripe_pattern(size, stripe, {d0.file(""), d1.file(""), d2.file("")}, fmt::format("s{}", stripe));
    const std::string man = write_manifest(d0.file(fmt::format("s{}.strata.json", stripe)), "s.gguf", size, stripe, parts);
    for (const std::string kind : kKinds) {
      CAPTURE(kind);
      Recorded rec;
      auto b = make_device_array(kind, small_opts(), recording_wrapper(rec));
      const uint32_t f = b->add_file(man);
      CHECK(b->file_size(f) == size);
      random_reads(*b, f, size, stripe + 7);
      // All three folders are on one filesystem here: one device, one inner backend, three
      // files in it; every piece it was asked for lies inside one stripe of one part.
      const auto ds = b->device_stats();
      REQUIRE(ds.size() == 1);
      CHECK(ds[0].paths == parts);
      std::lock_guard lk(rec.mu);
      REQUIRE(rec.per_backend.size() == 1);
      std::set<std::string> seen;
      uint64_t pieces = 0;
      for (const auto& entry : rec.per_backend[0]) {
        // Not a structured binding: CAPTURE's lambda may not capture one (clang refuses).
        const std::string& path = entry.first;
        const auto& r = entry.second;
        CAPTURE(path);
        CAPTURE(r.offset);
        CAPTURE(r.length);
        CHECK(r.length <= stripe);
        CHECK(r.offset % stripe + r.length <= stripe);
        CHECK(r.offset % 4096 == 0);
        seen.insert(path);
        ++pieces;
      }
      CHECK(seen == std::set<std::string>(parts.begin(), parts.end()));
      CHECK(pieces > 80);  // requests were split
    }
  }
}

TEST_CASE("device array: parts on two filesystems are two devices, each with its own backend") {
  ScratchDir d0, d2;
  const auto shm = other_device_dir(d0.file(""));
  if (!shm) {
    MESSAGE("skipped: no second filesystem (/dev/shm) to put a part on");
    return;
  }
  struct Cleanup {
    std::string p;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } cleanup{*shm};
  const uint64_t size = (1 << 20) + 12345, stripe = 64 << 10;
  const auto parts = stripe_pattern(size, stripe, {d0.file(""), *shm, d2.file("")}, "two");
  const std::string man = write_manifest(d0.file("two.strata.json"), "two.gguf", size, stripe, parts);
  for (const std::string kind : kKinds) {
    CAPTURE(kind);
    Recorded rec;
    auto b = make_device_array(kind, small_opts(), recording_wrapper(rec));
    const uint32_t f = b->add_file(man);
    random_reads(*b, f, size, 99);
    const auto ds = b->device_stats();
    REQUIRE(ds.size() == 2);
    CHECK(ds[0].paths == std::vector<std::string>{parts[0], parts[2]});
    CHECK(ds[1].paths == std::vector<std::string>{parts[1]});
    CHECK(ds[0].device != ds[1].device);
    std::lock_guard lk(rec.mu);
    REQUIRE(rec.per_backend.size() == 2);
    for (const auto& [path, r] : rec.per_backend[0]) CHECK(path != parts[1]);
    for (const auto& [path, r] : rec.per_backend[1]) CHECK(path == parts[1]);
    CHECK(!rec.per_backend[1].empty());
  }
}

TEST_CASE("device array: cancelled requests complete once, cancelled or with their data") {
  ScratchDir d0, d1, d2;
  const uint64_t size = 4 << 20, stripe = 64 << 10;
  const auto parts = stripe_pattern(size, stripe, {d0.file(""), d1.file(""), d2.file("")}, "c");
  const std::string man = write_manifest(d0.file("c.strata.json"), "c.gguf", size, stripe, parts);
  for (const std::string kind : kKinds) {
    CAPTURE(kind);
    BackendOptions o;
    o.queue_depth = 4;
    o.chunk_bytes = 64 << 10;  // the least in-flight limit, 1 MiB: most requests wait in the array's queue
    o.threads = 1;
    auto b = make_device_array(kind, o);
    const uint32_t f = b->add_file(man);
    const int n = 48;
    std::vector<AlignedBuffer> bufs;
    std::vector<ReadRequest> reqs;
    for (int i = 0; i < n; ++i) {
      bufs.emplace_back(1 << 20);
      reqs.push_back({f, uint64_t(i % 4) << 20, 1 << 20, bufs.back().data(), uint64_t(i), uint8_t(i % 3)});
    }
    b->submit(reqs);
    b->cancel(0);
    for (int i = n - 16; i < n; ++i) b->cancel(i);
    b->cancel(9999);  // unknown: nothing happens
    auto done = reap_all(*b, n);
    REQUIRE(done.size() == size_t(n));
    std::vector<Completion> extra;
    b->reap(extra, true, std::chrono::milliseconds(50));
    CHECK(extra.empty());
    int cancelled = 0;
    for (const auto& [ud, count] : completion_counts(done)) CHECK(count == 1);
    for (const Completion& c : done) {
      CAPTURE(c.user_data);
      if (c.error == -ECANCELED) {
        ++cancelled;
        CHECK((c.user_data == 0 || c.user_data >= uint64_t(n - 16)));
      } else {
        CHECK(c.error == 0);
        CHECK(c.bytes == (1u << 20));
        CHECK(pattern_mismatch(reqs[c.user_data].dst, reqs[c.user_data].offset, c.bytes) == -1);
      }
    }
    // The last 16 were still in the array's queue behind a 1 MiB limit (and never issued).
    CHECK(cancelled >= 16);
  }
}

TEST_CASE("device array: a drive's queue is served most urgent first") {
  ScratchDir dir;
  const uint64_t size = 8 << 20;
  const std::string path = dir.pattern_file("prio.bin", size);
  Script s;
  BackendOptions o;
  o.queue_depth = 1;
  o.chunk_bytes = 4096;
  auto b = make_device_array("pread", o, fake_wrapper(s));
  const uint32_t f = b->add_file(path);
  CHECK(std::string(b->name()) == "fake");
  REQUIRE(s.fakes.size() == 1);
  std::vector<AlignedBuffer> bufs;
  auto req = [&](uint64_t off, uint64_t len, uint8_t pri, uint64_t ud) {
    bufs.emplace_back(len);
    return ReadRequest{f, off, len, bufs.back().data(), ud, pri};
  };
  bufs.reserve(16);
  // Four speculative 1 MiB reads: more than the drive's in-flight limit (queue_depth x
  // chunk_bytes, at least 1 MiB), so only the first is issued.
  const ReadRequest spec[] = {req(0, 1 << 20, 2, 10), req(1 << 20, 1 << 20, 2, 11), req(2 << 20, 1 << 20, 2, 12),
                              req(3 << 20, 1 << 20, 2, 13)};
  b->submit(spec);
  REQUIRE(s.wait_issued(1));
  CHECK(s.issued() == 1);
  // Then one read ahead and one needed now, in that order.
  const ReadRequest ahead[] = {req(5 << 20, 8192, 1, 20)};
  b->submit(ahead);
  const ReadRequest now[] = {req(6 << 20, 4096, 0, 30)};
  b->submit(now);
  CHECK(s.issued() == 1);  // the drive is full: both wait in its queue
  std::vector<Completion> done;
  // Release one issued read at a time; the array issues the next from its queue as each lands.
  for (size_t i = 0; i < 6; ++i) {
    REQUIRE(s.wait_issued(i + 1));
    s.release(i);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (done.size() < i + 1 && std::chrono::steady_clock::now() < deadline) b->reap(done, true, std::chrono::milliseconds(50));
    REQUIRE(done.size() == i + 1);
  }
  const auto log = s.snapshot();
  REQUIRE(log.size() == 6);
  std::vector<uint64_t> order;
  for (const Issued& is : log) order.push_back(is.offset);
  // The Now read overtook the Ahead one and both overtook the three speculative reads queued
  // before them.
  INFO("issue order (offsets): ", fmt::format("{}", fmt::join(order, " ")));
  CHECK(order == std::vector<uint64_t>{0, 6u << 20, 5u << 20, 1u << 20, 2u << 20, 3u << 20});
  CHECK(log[1].priority == 0);
  CHECK(log[2].priority == 1);
  CHECK(log[3].priority == 2);
  std::vector<uint64_t> completed;
  for (const Completion& c : done) {
    CHECK(c.error == 0);
    completed.push_back(c.user_data);
  }
  INFO("completion order: ", fmt::format("{}", fmt::join(completed, " ")));
  CHECK(completed == std::vector<uint64_t>{10, 30, 20, 11, 12, 13});
  CHECK(pattern_mismatch(bufs[5].data(), 6 << 20, 4096) == -1);  // the fake served the file's bytes
}

TEST_CASE("device array: with the scripted backend, cancel takes queued pieces back and cancels issued ones") {
  ScratchDir d0, d1, d2;
  const uint64_t size = 4 << 20, stripe = 64 << 10;
  const auto parts = stripe_pattern(size, stripe, {d0.file(""), d1.file(""), d2.file("")}, "k");
  const std::string man = write_manifest(d0.file("k.strata.json"), "k.gguf", size, stripe, parts);
  Script s;
  BackendOptions o;
  o.queue_depth = 1;
  o.chunk_bytes = 4096;
  auto b = make_device_array("pread", o, fake_wrapper(s));
  const uint32_t f = b->add_file(man);
  std::vector<AlignedBuffer> bufs;
  bufs.reserve(4);
  std::vector<ReadRequest> reqs;
  for (uint64_t i = 0; i < 3; ++i) {
    bufs.emplace_back(1 << 20);
    reqs.push_back({f, i << 20, 1 << 20, bufs.back().data(), 100 + i, 2});
  }
  b->submit(reqs);
  REQUIRE(s.wait_issued(16));  // request 100: 16 stripes of 64 KiB, the whole 1 MiB limit
  CHECK(s.issued() == 16);
  b->cancel(101);  // wholly queued: completes cancelled at once, nothing reaches the fake
  std::vector<Completion> done;
  b->reap(done, false);
  REQUIRE(done.size() == 1);
  CHECK(done[0].user_data == 101);
  CHECK(done[0].error == -ECANCELED);
  CHECK(s.issued() == 16);
  b->cancel(100);  // issued: the fake is asked to cancel each of its 16 pieces
  {
    std::lock_guard lk(s.mu);
    CHECK(s.cancels.size() == 16);
  }
  const auto more = reap_all(*b, 1, std::chrono::seconds(5));
  REQUIRE(more.size() >= 1);
  CHECK(more[0].user_data == 100);
  CHECK(more[0].error == -ECANCELED);
  // Request 102 goes out now that the drive is free, and completes with its bytes.
  s.set_auto(true);
  s.release_all();
  std::vector<Completion> rest(more.begin() + 1, more.end());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (rest.empty() && std::chrono::steady_clock::now() < deadline) b->reap(rest, true, std::chrono::milliseconds(50));
  REQUIRE(rest.size() == 1);
  CHECK(rest[0].user_data == 102);
  CHECK(rest[0].error == 0);
  CHECK(rest[0].bytes == (1u << 20));
  CHECK(pattern_mismatch(bufs[2].data(), 2 << 20, 1 << 20) == -1);
  CHECK(b->in_flight() == 0);
}

TEST_CASE("device array: a failed piece fails its request with the inner backend's message") {
  ScratchDir d0, d1, d2;
  const uint64_t size = 1 << 20, stripe = 64 << 10;
  const auto parts = stripe_pattern(size, stripe, {d0.file(""), d1.file(""), d2.file("")}, "e");
  const std::string man = write_manifest(d0.file("e.strata.json"), "e.gguf", size, stripe, parts);
  Script s;
  s.auto_complete = true;
  // Part 2's second stripe (logical stripe 4) fails.
  s.fail = [&](const std::string& path, uint64_t offset) -> std::optional<std::string> {
    if (path == parts[1] && offset == stripe) return path + ": injected EIO at offset " + std::to_string(offset);
    return std::nullopt;
  };
  auto b = make_device_array("uring", small_opts(), fake_wrapper(s));
  const uint32_t f = b->add_file(man);
  AlignedBuffer a(6 * stripe), c(3 * stripe), d(2 * stripe);
  const ReadRequest reqs[] = {{f, 0, 6 * stripe, a.data(), 1},            // stripes 0-5: holds the bad one
                              {f, 5 * stripe, 3 * stripe, c.data(), 2},  // stripes 5-7: fine
                              {f, 4 * stripe + 8192, 4096, d.data(), 3}};  // inside the bad stripe, another offset
  b->submit(reqs);
  const auto done = reap_all(*b, 3, std::chrono::seconds(5));
  REQUIRE(done.size() == 3);
  for (const auto& [ud, count] : completion_counts(done)) CHECK(count == 1);
  for (const Completion& cp : done) {
    CAPTURE(cp.user_data);
    if (cp.user_data == 1) {
      CHECK(cp.error == -EIO);
      CHECK(cp.message == parts[1] + ": injected EIO at offset " + std::to_string(stripe));
      CHECK(cp.bytes == 0);
    } else {
      CHECK(cp.error == 0);
      CHECK(cp.message.empty());
    }
  }
  CHECK(pattern_mismatch(c.data(), 5 * stripe, 3 * stripe) == -1);
  CHECK(pattern_mismatch(d.data(), 4 * stripe + 8192, 4096) == -1);
  CHECK(b->stats().errors == 1);
}

TEST_CASE("device array: a piece the drive cancelled on its own fails its request, never reads as data") {
  // Only cancel() may turn -ECANCELED into a cancelled request; a piece that comes back
  // -ECANCELED unasked (the kernel tore the read down) has no bytes: the request must not
  // complete as if it had read them.
  ScratchDir d0, d1, d2;
  const uint64_t size = 1 << 20, stripe = 64 << 10;
  const auto parts = stripe_pattern(size, stripe, {d0.file(""), d1.file(""), d2.file("")}, "x");
  const std::string man = write_manifest(d0.file("x.strata.json"), "x.gguf", size, stripe, parts);
  Script s;
  s.auto_complete = true;
  s.fail_errno = ECANCELED;
  s.fail = [&](const std::string& path, uint64_t offset) -> std::optional<std::string> {
    if (path == parts[2] && offset == 0) return path + ": read cancelled by the kernel";
    return std::nullopt;
  };
  auto b = make_device_array("pread", small_opts(), fake_wrapper(s));
  const uint32_t f = b->add_file(man);
  AlignedBuffer a(4 * stripe);
  const ReadRequest r{f, 0, 4 * stripe, a.data(), 7};  // stripes 0-3: stripe 2 is the cancelled piece
  b->submit({&r, 1});
  const auto done = reap_all(*b, 1, std::chrono::seconds(5));
  REQUIRE(done.size() == 1);
  CHECK(done[0].user_data == 7);
  CHECK(done[0].error == -ECANCELED);
  CHECK(done[0].bytes == 0);
  CHECK(done[0].message.find("cancelled by the kernel") != std::string::npos);
}
