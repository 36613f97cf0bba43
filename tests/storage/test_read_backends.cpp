// The read backends (uring, pread, mmap) against files of a known pattern: random aligned ranges
// with more chunks than the queue depth, end of file, files shortened under the backend,
// cancellation, statistics, registered buffers, the io_uring -> pread fallback, bad input.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <thread>

#include "storage/aligned_buffer.h"
#include "storage/error.h"
#include "storage/read_backend.h"
#include "tests/storage/read_test_support.h"

using strata::storage::AlignedBuffer;
using strata::storage::BackendOptions;
using strata::storage::Completion;
using strata::storage::make_read_backend;
using strata::storage::ReadBackend;
using strata::storage::ReadRequest;
using namespace strata::test;

namespace {

const char* const kKinds[] = {"uring", "pread", "mmap"};

BackendOptions small_opts() {
  BackendOptions o;
  o.queue_depth = 4;
  o.chunk_bytes = 64 << 10;
  o.threads = 3;
  return o;
}

uint64_t expected_bytes(uint64_t size, uint64_t off, uint64_t len) {
  return off >= size ? 0 : std::min(len, size - off);
}

}  // namespace

TEST_CASE("read backends: random aligned ranges match the file") {
  ScratchDir dir;
  if (!dir.direct_io_supported()) MESSAGE("/var/tmp does not take O_DIRECT: buffered reads tested");
  const uint64_t size = (3 << 20) + 1000;
  const std::string path = dir.pattern_file("data.bin", size);
  for (const std::string kind : kKinds) {
    CAPTURE(kind);
    auto b = make_read_backend(kind, small_opts());
    CHECK(std::string(b->name()) == kind);
    const uint32_t f = b->add_file(path);
    CHECK(b->file_size(f) == size);
    const size_t a = b->alignment();
    if (kind == "mmap") {
      CHECK(a == 1);
    } else {
      CHECK(a >= 512);
      CHECK(std::has_single_bit(a));
    }
    // Offsets and lengths in 4 KiB units (a multiple of any block size) so every backend gets
    // the same requests; lengths up to 640 KiB span up to 11 chunks, far above the depth of 4.
    std::mt19937_64 rng(42);
    const int n = 120;
    std::vector<AlignedBuffer> bufs;
    std::vector<ReadRequest> reqs;
    for (int i = 0; i < n; ++i) {
      ReadRequest r;
      r.file = f;
      r.offset = (rng() % ((size >> 12) + 2)) << 12;  // sometimes at or past the end
      r.length = (1 + rng() % 160) << 12;
      bufs.emplace_back(r.length);
      std::memset(bufs.back().data(), 0xee, r.length);
      r.dst = bufs.back().data();
      r.user_data = 1000 + i;
      reqs.push_back(r);
    }
    b->submit(reqs);
    CHECK(b->in_flight() == n);
    auto done = reap_all(*b, n);
    REQUIRE(done.size() == n);
    CHECK(b->in_flight() == 0);
    uint64_t total = 0;
    std::set<uint64_t> seen;
    for (const Completion& c : done) {
      REQUIRE(c.user_data >= 1000);
      REQUIRE(c.user_data < 1000 + n);
      CHECK(seen.insert(c.user_data).second);
      const ReadRequest& r = reqs[c.user_data - 1000];
      CAPTURE(r.offset);
      CAPTURE(r.length);
      CHECK(c.error == 0);
      CHECK(c.message.empty());
      CHECK(c.bytes == expected_bytes(size, r.offset, r.length));
      CHECK(pattern_mismatch(r.dst, r.offset, c.bytes) == -1);
      total += c.bytes;
    }
    const auto s = b->stats();
    CHECK(s.ops == n);
    CHECK(s.bytes == total);
    CHECK(s.errors == 0);
    CHECK(s.chunks >= n - 10);  // requests wholly past the end may need no chunk at all
    uint64_t hist = 0;
    for (uint64_t h : s.latency_us_hist) hist += h;
    CHECK(hist == n);
    CHECK(s.busy_s > 0);
    if (kind != "mmap") CHECK(s.chunks > 2 * n);  // the long requests were split
  }
}

TEST_CASE("read backends: reads at the end of the file return the bytes that exist") {
  ScratchDir dir;
  const uint64_t size = (1 << 20) + 1000;
  const std::string path = dir.pattern_file("tail.bin", size);
  for (const std::string kind : kKinds) {
    CAPTURE(kind);
    BackendOptions o = small_opts();
    o.chunk_bytes = 4096;
    auto b = make_read_backend(kind, o);
    const uint32_t f = b->add_file(path);
    struct Case { uint64_t offset, length; };
    const Case cases[] = {{1 << 20, 8192},              // the 1000-byte tail
                          {(1 << 20) - 8192, 4 * 4096},  // spans chunks, the last one short
                          {2 << 20, 4096},              // wholly past the end
                          {0, 2 << 20}};                // the whole file, 257 chunks
    std::vector<AlignedBuffer> bufs;
    std::vector<ReadRequest> reqs;
    for (size_t i = 0; i < std::size(cases); ++i) {
      bufs.emplace_back(cases[i].length);
      reqs.push_back({f, cases[i].offset, cases[i].length, bufs.back().data(), i});
    }
    b->submit(reqs);
    auto done = reap_all(*b, reqs.size());
    REQUIRE(done.size() == reqs.size());
    for (const Completion& c : done) {
      const ReadRequest& r = reqs[c.user_data];
      CAPTURE(r.offset);
      CHECK(c.error == 0);
      CHECK(c.bytes == expected_bytes(size, r.offset, r.length));
      CHECK(pattern_mismatch(r.dst, r.offset, c.bytes) == -1);
    }
  }
}

TEST_CASE("read backends: a file shortened after add_file gives a short count or an error") {
  ScratchDir dir;
  for (const std::string kind : kKinds) {
    CAPTURE(kind);
    const std::string path = dir.pattern_file("shrink-" + kind, 2 << 20);
    auto b = make_read_backend(kind, small_opts());
    const uint32_t f = b->add_file(path);
    const uint64_t new_size = (1 << 20) + 512;
    REQUIRE(::truncate(path.c_str(), static_cast<off_t>(new_size)) == 0);
    AlignedBuffer whole(2 << 20), past(64 << 10);
    const ReadRequest reqs[] = {{f, 0, 2 << 20, whole.data(), 1},
                                {f, (3 << 19), 64 << 10, past.data(), 2}};
    b->submit(reqs);
    auto done = reap_all(*b, 2, std::chrono::seconds(10));
    REQUIRE(done.size() == 2);  // never a hang
    for (const Completion& c : done) {
      const ReadRequest& r = reqs[c.user_data - 1];
      if (c.error == 0) {
        CHECK(c.bytes == expected_bytes(new_size, r.offset, r.length));
        CHECK(pattern_mismatch(r.dst, r.offset, c.bytes) == -1);
      } else {
        CHECK(c.error < 0);
        CHECK(c.message.find(path) != std::string::npos);
      }
    }
  }
}

TEST_CASE("read backends: cancelled requests complete once, cancelled or with their data") {
  ScratchDir dir;
  const uint64_t size = 4 << 20;
  const std::string path = dir.pattern_file("cancel.bin", size);
  for (const std::string kind : kKinds) {
    CAPTURE(kind);
    BackendOptions o;
    o.queue_depth = 2;
    o.chunk_bytes = 64 << 10;
    o.threads = 1;
    auto b = make_read_backend(kind, o);
    const uint32_t f = b->add_file(path);
    const int n = 64;
    std::vector<AlignedBuffer> bufs;
    std::vector<ReadRequest> reqs;
    for (int i = 0; i < n; ++i) {
      bufs.emplace_back(1 << 20);
      reqs.push_back({f, uint64_t(i % 4) << 20, 1 << 20, bufs.back().data(), uint64_t(i)});
    }
    b->submit(reqs);
    // The first request is (at least partly) in flight; the last ones are still queued.
    b->cancel(0);
    for (int i = n - 16; i < n; ++i) b->cancel(i);
    b->cancel(9999);  // unknown: nothing happens
    auto done = reap_all(*b, n);
    REQUIRE(done.size() == n);
    auto counts = completion_counts(done);
    CHECK(counts.size() == n);
    int cancelled = 0;
    for (const Completion& c : done) {
      CAPTURE(c.user_data);
      CHECK(counts[c.user_data] == 1);
      const ReadRequest& r = reqs[c.user_data];
      const bool asked = c.user_data == 0 || c.user_data >= n - 16;
      if (asked && c.error == -ECANCELED) {
        cancelled++;
        CHECK(c.message.find(path) != std::string::npos);
        CHECK(c.message.find("cancel") != std::string::npos);
      } else {
        CHECK(c.error == 0);
        CHECK(c.bytes == r.length);
        CHECK(pattern_mismatch(r.dst, r.offset, c.bytes) == -1);
      }
    }
    if (kind == "mmap")
      CHECK(cancelled == 0);  // it completed everything inside submit()
    else
      CHECK(cancelled >= 1);  // the queued requests are dropped
    b->cancel(5);  // already reaped: nothing happens
    CHECK(b->in_flight() == 0);
    std::vector<Completion> more;
    CHECK(b->reap(more, true, std::chrono::milliseconds(10)) == 0);
  }
}

TEST_CASE("read backends: destroying a backend waits for its reads") {
  ScratchDir dir;
  const std::string path = dir.pattern_file("destroy.bin", 4 << 20);
  for (const std::string kind : kKinds) {
    CAPTURE(kind);
    std::vector<AlignedBuffer> bufs;
    for (int i = 0; i < 32; ++i) bufs.emplace_back(1 << 20);
    {
      BackendOptions o;
      o.queue_depth = 8;
      o.chunk_bytes = 128 << 10;
      auto b = make_read_backend(kind, o);
      const uint32_t f = b->add_file(path);
      std::vector<ReadRequest> reqs;
      for (int i = 0; i < 32; ++i)
        reqs.push_back({f, uint64_t(i % 4) << 20, 1 << 20, bufs[i].data(), uint64_t(i)});
      b->submit(reqs);
    }  // destroyed with reads in flight and queued
    // No read may land after the destructor returned.
    for (auto& buf : bufs) std::memset(buf.data(), 0x5a, buf.size());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    bool untouched = true;
    for (auto& buf : bufs)
      untouched = untouched && std::all_of(buf.data(), buf.data() + buf.size(),
                                           [](std::byte x) { return x == std::byte{0x5a}; });
    CHECK(untouched);
  }
}

TEST_CASE("read backends: one thread submits while another reaps") {
  ScratchDir dir;
  const uint64_t size = 2 << 20;
  const std::string path = dir.pattern_file("threads.bin", size);
  for (const std::string kind : kKinds) {
    CAPTURE(kind);
    auto b = make_read_backend(kind, small_opts());
    const uint32_t f = b->add_file(path);
    const int n = 200;
    std::vector<AlignedBuffer> bufs;
    std::vector<ReadRequest> reqs;
    for (int i = 0; i < n; ++i) {
      bufs.emplace_back(128 << 10);
      reqs.push_back({f, uint64_t(i % 16) << 17, 128 << 10, bufs.back().data(), uint64_t(i)});
    }
    std::thread producer([&] {
      for (int i = 0; i < n; i += 10) {
        b->submit(std::span(reqs).subspan(i, 10));
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    });
    auto done = reap_all(*b, n);
    producer.join();
    REQUIRE(done.size() == n);
    CHECK(completion_counts(done).size() == n);
    for (const Completion& c : done) {
      const ReadRequest& r = reqs[c.user_data];
      CHECK(c.error == 0);
      CHECK(c.bytes == r.length);
      CHECK(pattern_mismatch(r.dst, r.offset, c.bytes) == -1);
    }
  }
}

TEST_CASE("read backends: invalid requests complete with an error, bad setup throws") {
  ScratchDir dir;
  const std::string path = dir.pattern_file("bad.bin", 1 << 20);
  CHECK_THROWS_WITH_AS(make_read_backend("floppy"), doctest::Contains("floppy"), strata::Error);
  BackendOptions bad;
  bad.chunk_bytes = 1000;
  CHECK_THROWS_WITH_AS(make_read_backend("pread", bad), doctest::Contains("chunk_bytes"),
                       strata::Error);
  for (const std::string kind : kKinds) {
    CAPTURE(kind);
    auto b = make_read_backend(kind, small_opts());
    const std::string missing = dir.file("missing.bin");
    CHECK_THROWS_WITH_AS(b->add_file(missing), doctest::Contains(missing.c_str()), strata::Error);
    const uint32_t f = b->add_file(path);
    AlignedBuffer buf(64 << 10);
    std::vector<ReadRequest> reqs = {{f + 7, 0, 4096, buf.data(), 1},  // never added
                                     {f, 0, 0, buf.data(), 2}};        // empty
    if (kind != "mmap") {
      reqs.push_back({f, 100, 4096, buf.data(), 3});             // misaligned offset
      reqs.push_back({f, 0, 4096, buf.data() + 8, 4});           // misaligned buffer
    }
    b->submit(reqs);
    auto done = reap_all(*b, reqs.size(), std::chrono::seconds(5));
    REQUIRE(done.size() == reqs.size());
    for (const Completion& c : done) {
      CAPTURE(c.user_data);
      if (c.user_data == 1) CHECK(c.error == -EBADF);
      if (c.user_data == 2) CHECK((c.error == 0 && c.bytes == 0));
      if (c.user_data >= 3) {
        CHECK(c.error == -EINVAL);
        CHECK(c.message.find(path) != std::string::npos);
      }
    }
    CHECK_THROWS_AS(b->file_size(f + 7), strata::Error);
  }
}

TEST_CASE("uring: reads into registered buffers use read_fixed and give the same bytes") {
  ScratchDir dir;
  const uint64_t size = 3 << 20;
  const std::string path = dir.pattern_file("fixed.bin", size);
  auto b = make_read_backend("uring", small_opts());
  if (std::string(b->name()) != "uring") {
    MESSAGE("skipped: io_uring is unavailable here");
    return;
  }
  const uint32_t f = b->add_file(path);
  AlignedBuffer pool(4 << 20), loose(256 << 10);
  b->register_buffer(pool.data(), pool.size());
  std::vector<ReadRequest> reqs;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 16; ++i) {  // 16 disjoint 256 KiB slots of the pool, random file offsets
    uint64_t off = (rng() % (size >> 12)) << 12;
    reqs.push_back({f, off, 256 << 10, pool.data() + (size_t(i) << 18), uint64_t(i)});
  }
  reqs.push_back({f, 4096, 256 << 10, loose.data(), 16});
  b->submit(reqs);
  auto done = reap_all(*b, reqs.size());
  REQUIRE(done.size() == reqs.size());
  for (const Completion& c : done) {
    const ReadRequest& r = reqs[c.user_data];
    CHECK(c.error == 0);
    CHECK(c.bytes == expected_bytes(size, r.offset, r.length));
    CHECK(pattern_mismatch(r.dst, r.offset, c.bytes) == -1);
  }
  const auto s = b->stats();
  // Chunks into the pool went through read_fixed; the 4 chunks into `loose` did not.
  CHECK(s.fixed_chunks > 0);
  CHECK(s.fixed_chunks + 4 <= s.chunks);
}

TEST_CASE("uring: a forced io_uring setup failure falls back to pread") {
  ScratchDir dir;
  const std::string path = dir.pattern_file("fallback.bin", 1 << 20);
  ::setenv("STRATA_URING_DISABLE", "1", 1);
  auto b = make_read_backend("uring", small_opts());
  ::unsetenv("STRATA_URING_DISABLE");
  CHECK(std::string(b->name()) == "pread");
  const uint32_t f = b->add_file(path);
  AlignedBuffer buf(1 << 20);
  const ReadRequest r{f, 0, 1 << 20, buf.data(), 5};
  b->submit({&r, 1});
  auto done = reap_all(*b, 1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].error == 0);
  CHECK(done[0].bytes == (1 << 20));
  CHECK(pattern_mismatch(buf.data(), 0, 1 << 20) == -1);
  auto normal = make_read_backend("uring", small_opts());
  if (std::string(normal->name()) != "uring") MESSAGE("io_uring is unavailable on this machine");
}

TEST_CASE("uring: SQPOLL submission reads the same bytes") {
  ScratchDir dir;
  const uint64_t size = 2 << 20;
  const std::string path = dir.pattern_file("sqpoll.bin", size);
  BackendOptions o = small_opts();
  o.sqpoll = true;
  auto b = make_read_backend("uring", o);
  const uint32_t f = b->add_file(path);
  std::vector<AlignedBuffer> bufs;
  std::vector<ReadRequest> reqs;
  for (int i = 0; i < 8; ++i) {
    bufs.emplace_back(256 << 10);
    reqs.push_back({f, uint64_t(i) << 18, 256 << 10, bufs.back().data(), uint64_t(i)});
  }
  b->submit(reqs);
  auto done = reap_all(*b, reqs.size());
  REQUIRE(done.size() == reqs.size());
  for (const Completion& c : done) {
    CHECK(c.error == 0);
    CHECK(pattern_mismatch(reqs[c.user_data].dst, reqs[c.user_data].offset, c.bytes) == -1);
    CHECK(c.bytes == (256 << 10));
  }
}
