// The hard budget: a synthetic Mixtral-style model of more than 4 GiB runs with
// --memory-budget 512M; the process's peak RSS (VmHWM) stays under budget + 300 MiB, and with
// the O_DIRECT backends the model file is not left in the page cache (mincore on a fresh
// mapping after the run).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "tests/shared_data.h"
#include "tests/tools/run_strata.h"
#include "tests/storage/read_test_support.h"

namespace {

using strata::test::RunResult;
using strata::test::run_strata;

// Bytes of the file that sit in the page cache, by mincore on a fresh shared mapping.
uint64_t cached_bytes(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  const off_t size = ::lseek(fd, 0, SEEK_END);
  void* p = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  REQUIRE(p != MAP_FAILED);
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> vec((static_cast<size_t>(size) + page - 1) / page);
  REQUIRE(::mincore(p, static_cast<size_t>(size), vec.data()) == 0);
  ::munmap(p, static_cast<size_t>(size));
  uint64_t n = 0;
  for (unsigned char v : vec) n += v & 1;
  return n * page;
}

void drop_from_page_cache(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

}  // namespace

TEST_CASE("a 4+ GiB MoE runs in a 512M budget: peak RSS under budget + 300 MiB, file not in the page cache") {
  strata::test::ScratchDir dir;
  const std::string model = dir.file("big-moe.gguf");
  RunResult s = run_strata(fmt::format(
      "synth -o \"{}\" --arch mixtral --dim 1024 --heads 8 --kv-heads 4 --experts 8 --used 2 --ffn 4096 "
      "--vocab 2048 --size 4.2G --type q4_0 --seed 5",
      model));
  REQUIRE_MESSAGE(s.status == 0, s.output);
  REQUIRE(std::filesystem::file_size(model) > (4ull << 30));
  const uint64_t budget = 512ull << 20;
  for (const char* io : {"uring", "pread"}) {
    CAPTURE(std::string(io));
    drop_from_page_cache(model);
    const uint64_t before = cached_bytes(model);
    RunResult r = run_strata(fmt::format("run -m \"{}\" -p \"Once upon a time\" -n 3 -t 2 --memory-budget 512M --io {} --json",
                                         model, io), /*stdout_only=*/true);
    REQUIRE_MESSAGE(r.status == 0, r.output);
    const auto j = nlohmann::json::parse(r.output);
    CHECK(j["token_ids"].size() == 3);
    const auto& st = j["stats"]["streaming"];
    const uint64_t rss = st["peak_rss_bytes"];
    MESSAGE(std::string(io) << ": peak RSS " << (rss >> 20) << " MiB, pool locked " << st["pool_locked"]);
    CHECK(rss > 0);
    CHECK(rss < budget + (300ull << 20));
    CHECK(st["peak_resident_bytes"].get<uint64_t>() <= budget);
    // Only the plain-read header, metadata and tensor index may be cached (well under 16 MiB).
    const uint64_t after = cached_bytes(model);
    MESSAGE(std::string(io) << ": page cache holds " << (after >> 10) << " KiB of the model (before the run " << (before >> 10) << " KiB)");
    CHECK(after < (16ull << 20));
  }
}
