// storage/io_benchmark: jobs against a scratch file through the uring and pread backends count
// what they read (bytes = reads x block size, iops x bs = bw), keep every latency (percentiles
// monotone), wrap sequential reads, run together, and refuse what cannot be measured by name.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "storage/error.h"
#include "storage/io_benchmark.h"
#include "storage/read_backend.h"
#include "tests/storage/read_test_support.h"

using namespace strata;
using storage::IoJobResult;
using storage::IoJobSpec;
using storage::IoPattern;

namespace {

void check_counts(const IoJobResult& r) {
  CHECK(r.ios > 0);
  CHECK(r.bytes == r.ios * r.spec.block_size);
  CHECK(r.short_ios == 0);
  CHECK(r.clat_ns.size() == r.ios);
  CHECK(r.seconds > 0);
  CHECK(r.iops() * double(r.spec.block_size) == doctest::Approx(r.bw()).epsilon(1e-9));
  uint64_t prev = 0;
  for (double p : storage::fio_percentiles()) {
    const uint64_t v = r.clat_percentile(p);
    CHECK(v >= prev);
    prev = v;
  }
  const storage::LatencyStats l = r.clat();
  CHECK(l.n == r.ios);
  CHECK(l.min <= r.clat_percentile(50));
  CHECK(r.clat_percentile(50) <= l.max);
  CHECK(l.mean >= double(l.min));
  CHECK(l.mean <= double(l.max));
  CHECK(r.clat_percentile(100) == l.max);
  CHECK(r.stats.ops == r.ios);
  CHECK(r.stats.bytes == r.bytes);
}

}  // namespace

TEST_CASE("io_benchmark: uring and pread jobs count every read") {
  test::ScratchDir dir;
  if (!dir.direct_io_supported()) MESSAGE("/var/tmp does not take O_DIRECT: buffered reads measured");
  const std::string path = dir.pattern_file("data.bin", 8 << 20);
  for (const std::string kind : {"uring", "pread"}) {
    for (IoPattern rw : {IoPattern::sequential, IoPattern::random}) {
      for (unsigned qd : {1u, 4u}) {
        CAPTURE(kind);
        CAPTURE(storage::io_pattern_name(rw));
        CAPTURE(qd);
        IoJobSpec s;
        s.path = path;
        s.pattern = rw;
        s.block_size = 64 << 10;
        s.queue_depth = qd;
        s.runtime_s = 0.2;
        s.kind = kind;
        s.sample_s = 0.05;
        const IoJobResult r = storage::run_io_job(s);
        CHECK(r.file_size == (8u << 20));
        check_counts(r);
        CHECK(!r.bw_samples.empty());
        CHECK(r.bw_samples.size() == r.iops_samples.size());
      }
    }
  }
}

TEST_CASE("io_benchmark: a read count limit, sequential wrap-around, exact outstanding reads") {
  test::ScratchDir dir;
  const std::string path = dir.pattern_file("data.bin", 1 << 20);
  IoJobSpec s;
  s.path = path;
  s.pattern = IoPattern::sequential;
  s.block_size = 128 << 10;  // 8 blocks in the file
  s.queue_depth = 3;
  s.runtime_s = 0;
  s.max_ios = 21;  // more than twice round the file
  const IoJobResult r = storage::run_io_job(s);
  CHECK(r.ios == 21);
  CHECK(r.bytes == 21u * (128u << 10));
  check_counts(r);
  // Never more than queue_depth reads handed to the backend in one submit.
  uint64_t batches = 0;
  for (int b = 2; b < 7; ++b) batches += r.submit_batches[b];
  CHECK(batches == 0);
}

TEST_CASE("io_benchmark: jobs together run at once, one backend each") {
  test::ScratchDir dir;
  const std::string a = dir.pattern_file("a.bin", 4 << 20), b = dir.pattern_file("b.bin", 4 << 20);
  std::vector<IoJobSpec> specs(2);
  specs[0].path = a;
  specs[1].path = b;
  for (IoJobSpec& s : specs) {
    s.block_size = 256 << 10;
    s.queue_depth = 2;
    s.runtime_s = 0.2;
  }
  const std::vector<IoJobResult> rs = storage::run_io_jobs_together(specs);
  REQUIRE(rs.size() == 2);
  CHECK(rs[0].spec.path == a);
  CHECK(rs[1].spec.path == b);
  for (const IoJobResult& r : rs) check_counts(r);

  specs[1].path = dir.file("missing.bin");
  CHECK_THROWS_WITH_AS(storage::run_io_jobs_together(specs), doctest::Contains("missing.bin"), Error);
}

TEST_CASE("io_benchmark: refuses what cannot be measured, naming the file") {
  test::ScratchDir dir;
  const std::string small = dir.pattern_file("small.bin", 64 << 10);
  IoJobSpec s;
  s.path = small;
  s.block_size = 1 << 20;
  s.runtime_s = 0.1;
  CHECK_THROWS_WITH_AS(storage::run_io_job(s), doctest::Contains("small.bin: 65536 bytes, smaller than one"), Error);
  s.block_size = 0;
  CHECK_THROWS_WITH_AS(storage::run_io_job(s), doctest::Contains("block size must be positive"), Error);
  s.block_size = 4096;
  s.queue_depth = 0;
  CHECK_THROWS_WITH_AS(storage::run_io_job(s), doctest::Contains("queue depth must be positive"), Error);
  s.queue_depth = 1;
  s.path = dir.file("none.bin");
  CHECK_THROWS_WITH_AS(storage::run_io_job(s), doctest::Contains("none.bin"), Error);
  if (dir.direct_io_supported()) {
    s.path = small;
    s.block_size = 1000;  // not a multiple of any O_DIRECT alignment
    CHECK_THROWS_WITH_AS(storage::run_io_job(s), doctest::Contains("not a multiple of the file's O_DIRECT alignment"),
                         Error);
  }
}

TEST_CASE("io_benchmark: the test file is written in full") {
  test::ScratchDir dir;
  const std::string p = dir.file("t.dat");
  storage::write_test_file(p, (3 << 20) + 4096);
  CHECK(std::filesystem::file_size(p) == (3u << 20) + 4096);
  CHECK_THROWS_WITH_AS(storage::write_test_file(dir.file("no/such/dir/t.dat"), 4096), doctest::Contains("no/such/dir"),
                       Error);
}
