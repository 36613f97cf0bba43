// The fault-injection wrapper over each backend: an error on the Nth request (only there), errors
// by byte range and by file, reported and resubmitted short reads, delayed completions, and every
// request completing exactly once with nothing left in flight.
#include <doctest/doctest.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "storage/aligned_buffer.h"
#include "storage/error.h"
#include "storage/fault_backend.h"
#include "tests/storage/read_test_support.h"

using strata::storage::AlignedBuffer;
using strata::storage::BackendOptions;
using strata::storage::Completion;
using strata::storage::FaultPlan;
using strata::storage::make_fault_backend;
using strata::storage::make_read_backend;
using strata::storage::ReadBackend;
using strata::storage::ReadRequest;
using namespace strata::test;
using Clock = std::chrono::steady_clock;

namespace {

const char* const kKinds[] = {"uring", "pread", "mmap"};

BackendOptions small_opts() {
  BackendOptions o;
  o.queue_depth = 4;
  o.chunk_bytes = 64 << 10;
  o.threads = 2;
  return o;
}

// n requests of `len` bytes at consecutive offsets (wrapping in the file), user_data = 100 + i.
struct Batch {
  std::vector<AlignedBuffer> bufs;
  std::vector<ReadRequest> reqs;
  Batch(uint32_t file, int n, uint64_t len, uint64_t file_size) {
    for (int i = 0; i < n; ++i) {
      bufs.emplace_back(len);
      reqs.push_back({file, (uint64_t(i) * len) % file_size, len, bufs.back().data(),
                      uint64_t(100 + i)});
    }
  }
  const ReadRequest& of(const Completion& c) const { return reqs.at(c.user_data - 100); }
};

}  // namespace

TEST_CASE("fault injection: -EIO on the Nth request fails that request only") {
  ScratchDir dir;
  const uint64_t size = 2 << 20;
  const std::string path = dir.pattern_file("eio.bin", size);
  for (const std::string kind : kKinds) {
    CAPTURE(kind);
    FaultPlan plan;
    plan.fail_requests = {3};
    auto b = make_fault_backend(make_read_backend(kind, small_opts()), plan);
    const uint32_t f = b->add_file(path);
    Batch batch(f, 10, 256 << 10, size);
    b->submit(batch.reqs);
    auto done = reap_all(*b, 10);
    REQUIRE(done.size() == 10);
    CHECK(completion_counts(done).size() == 10);
    for (const Completion& c : done) {
      const ReadRequest& r = batch.of(c);
      CAPTURE(c.user_data);
      if (c.user_data == 103) {
        CHECK(c.error == -EIO);
        CHECK(c.bytes == 0);
        CHECK(c.message.find(path) != std::string::npos);
        CHECK(c.message.find("request #3") != std::string::npos);
        CHECK(c.message.find(std::to_string(r.offset)) != std::string::npos);
      } else {
        CHECK(c.error == 0);
        CHECK(c.bytes == r.length);
        CHECK(pattern_mismatch(r.dst, r.offset, c.bytes) == -1);
      }
    }
    CHECK(b->stats().errors == 1);
    CHECK(b->in_flight() == 0);
  }
}

TEST_CASE("fault injection: failures by byte range and by file") {
  ScratchDir dir;
  const uint64_t size = 1 << 20;
  const std::string a = dir.pattern_file("a.bin", size);
  const std::string b_path = dir.pattern_file("b.bin", size);
  FaultPlan plan;
  plan.fail_ranges = {{0, 300 << 10, (300 << 10) + 1}};  // one byte inside a's 3rd 128 KiB
  plan.fail_files = {1};
  plan.fail_errno = ENODATA;
  auto b = make_fault_backend(make_read_backend("pread", small_opts()), plan);
  const uint32_t fa = b->add_file(a), fb = b->add_file(b_path);
  REQUIRE(fb == 1);
  Batch on_a(fa, 8, 128 << 10, size), on_b(fb, 3, 128 << 10, size);
  for (auto& r : on_b.reqs) r.user_data += 50;
  b->submit(on_a.reqs);
  b->submit(on_b.reqs);
  auto done = reap_all(*b, 11);
  REQUIRE(done.size() == 11);
  for (const Completion& c : done) {
    CAPTURE(c.user_data);
    if (c.user_data >= 150) {
      CHECK(c.error == -ENODATA);
      CHECK(c.message.find(b_path) != std::string::npos);
    } else if (c.user_data == 102) {  // [256 KiB, 384 KiB) holds the byte
      CHECK(c.error == -ENODATA);
      CHECK(c.message.find("byte range") != std::string::npos);
    } else {
      const ReadRequest& r = on_a.of(c);
      CHECK(c.error == 0);
      CHECK(pattern_mismatch(r.dst, r.offset, c.bytes) == -1);
    }
  }
}

TEST_CASE("fault injection: reported short reads carry a correct prefix") {
  ScratchDir dir;
  const uint64_t size = 2 << 20;
  const std::string path = dir.pattern_file("short.bin", size);
  for (const std::string kind : kKinds) {
    CAPTURE(kind);
    FaultPlan plan;
    plan.short_reads = FaultPlan::ShortReads::reported;
    plan.short_every = 2;  // requests 1, 3, 5, ...
    auto b = make_fault_backend(make_read_backend(kind, small_opts()), plan);
    const uint32_t f = b->add_file(path);
    Batch batch(f, 8, 192 << 10, size);
    b->submit(batch.reqs);
    auto done = reap_all(*b, 8);
    REQUIRE(done.size() == 8);
    for (const Completion& c : done) {
      const ReadRequest& r = batch.of(c);
      CAPTURE(c.user_data);
      CHECK(c.error == 0);
      CHECK(c.bytes == (c.user_data % 2 == 1 ? r.length / 2 : r.length));
      CHECK(pattern_mismatch(r.dst, r.offset, c.bytes) == -1);
    }
  }
}

TEST_CASE("fault injection: resubmitted short reads go through the backend's retry path") {
  ScratchDir dir;
  const uint64_t size = (2 << 20) + 3000;  // an unaligned tail: the last chunk ends at EOF
  const std::string path = dir.pattern_file("resubmit.bin", size);
  for (const std::string kind : {"uring", "pread"}) {
    CAPTURE(kind);
    FaultPlan plan;
    plan.short_reads = FaultPlan::ShortReads::resubmitted;
    auto b = make_fault_backend(make_read_backend(kind, small_opts()), plan);
    const uint32_t f = b->add_file(path);
    Batch batch(f, 6, 512 << 10, 3 << 20);  // the last ones run past the end of the file
    b->submit(batch.reqs);
    auto done = reap_all(*b, 6);
    REQUIRE(done.size() == 6);
    for (const Completion& c : done) {
      const ReadRequest& r = batch.of(c);
      CAPTURE(r.offset);
      CHECK(c.error == 0);
      CHECK(c.bytes == (r.offset >= size ? 0 : std::min(r.length, size - r.offset)));
      CHECK(pattern_mismatch(r.dst, r.offset, c.bytes) == -1);
    }
    const auto s = b->stats();
    // 32 whole chunks, each first issued at half length so each needed one more read; the chunk
    // holding the 3000-byte tail and those past the end stop at the end of file instead (how many
    // of those get issued before the end of file is seen depends on timing).
    CHECK(s.chunks >= 34);
    CHECK(s.retries >= 32);
  }
  FaultPlan plan;
  plan.short_reads = FaultPlan::ShortReads::resubmitted;
  CHECK_THROWS_WITH_AS(make_fault_backend(make_read_backend("mmap"), plan),
                       doctest::Contains("mmap"), strata::Error);
}

TEST_CASE("fault injection: delayed completions arrive late and exactly once") {
  ScratchDir dir;
  const uint64_t size = 1 << 20;
  const std::string path = dir.pattern_file("delay.bin", size);
  for (const std::string kind : kKinds) {
    CAPTURE(kind);
    FaultPlan plan;
    plan.delay = std::chrono::milliseconds(80);
    plan.delay_every = 2;  // requests 1 and 3 are late
    auto b = make_fault_backend(make_read_backend(kind, small_opts()), plan);
    const uint32_t f = b->add_file(path);
    Batch batch(f, 4, 64 << 10, size);
    const auto start = Clock::now();
    b->submit(batch.reqs);
    // The prompt ones come first; the late ones not before the delay.
    std::vector<Completion> early;
    while (early.size() < 2 && Clock::now() - start < std::chrono::seconds(5))
      b->reap(early, true, std::chrono::milliseconds(500));
    REQUIRE(early.size() == 2);
    for (const Completion& c : early) CHECK(c.user_data % 2 == 0);
    CHECK(b->in_flight() == 2);
    auto late = reap_all(*b, 2);
    const auto elapsed = Clock::now() - start;
    REQUIRE(late.size() == 2);
    CHECK(elapsed >= std::chrono::milliseconds(80));
    for (const Completion& c : late) {
      CHECK(c.user_data % 2 == 1);
      CHECK(c.error == 0);
      CHECK(pattern_mismatch(batch.of(c).dst, batch.of(c).offset, c.bytes) == -1);
    }
    CHECK(b->in_flight() == 0);
    std::vector<Completion> none;
    CHECK(b->reap(none, false) == 0);
  }
}

TEST_CASE("fault injection: a mixed plan with cancels completes every request exactly once") {
  ScratchDir dir;
  const uint64_t size = 4 << 20;
  const std::string path = dir.pattern_file("mixed.bin", size);
  for (const std::string kind : kKinds) {
    CAPTURE(kind);
    FaultPlan plan;
    plan.fail_requests = {2, 7, 40};
    plan.short_reads = FaultPlan::ShortReads::reported;
    plan.short_every = 5;
    plan.delay = std::chrono::milliseconds(5);
    plan.delay_every = 3;
    BackendOptions o = small_opts();
    o.queue_depth = 2;
    auto b = make_fault_backend(make_read_backend(kind, o), plan);
    const uint32_t f = b->add_file(path);
    const int n = 48;
    Batch batch(f, n, 256 << 10, size);
    b->submit(std::span(batch.reqs).first(24));
    for (int i = 10; i < 20; ++i) b->cancel(100 + i);
    std::vector<Completion> done;
    b->reap(done, true, std::chrono::milliseconds(100));
    b->submit(std::span(batch.reqs).subspan(24));
    b->cancel(100 + 47);
    auto rest = reap_all(*b, n - done.size());
    done.insert(done.end(), std::make_move_iterator(rest.begin()), std::make_move_iterator(rest.end()));
    REQUIRE(done.size() == n);
    auto counts = completion_counts(done);
    CHECK(counts.size() == n);
    for (const Completion& c : done) {
      CAPTURE(c.user_data);
      CHECK(counts[c.user_data] == 1);
      const ReadRequest& r = batch.of(c);
      const uint64_t i = c.user_data - 100;
      if (i == 2 || i == 7 || i == 40) {
        CHECK(c.error == -EIO);
      } else if (c.error == -ECANCELED) {
        CHECK(((i >= 10 && i < 20) || i == 47));
      } else {
        CHECK(c.error == 0);
        CHECK(c.bytes == ((i + 1) % 5 == 0 ? r.length / 2 : r.length));
        CHECK(pattern_mismatch(r.dst, r.offset, c.bytes) == -1);
      }
    }
    CHECK(b->in_flight() == 0);
    std::vector<Completion> extra;
    CHECK(b->reap(extra, true, std::chrono::milliseconds(20)) == 0);
  }
}
