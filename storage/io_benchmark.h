// What a drive gives strata's read path, measured the way fio measures it: one job reads one file
// sequentially or at random block-aligned offsets, in reads of one block size, keeping exactly
// `queue_depth` reads outstanding (submit, reap, resubmit) through make_read_backend with O_DIRECT,
// into page-aligned slots of one registered region (as the streaming pool is). Every read's
// completion latency (submit to reap) is kept, so percentiles are exact. Several jobs can run at
// once, one thread and one backend each (every drive together). `strata iobench` drives this.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "storage/read_backend.h"

namespace strata::storage {

enum class IoPattern { sequential, random };
const char* io_pattern_name(IoPattern p);  // fio's rw names: "read", "randread"

struct IoJobSpec {
  std::string path;
  IoPattern pattern = IoPattern::random;
  uint64_t block_size = 1 << 20;  // a multiple of the file's O_DIRECT alignment
  unsigned queue_depth = 1;
  double runtime_s = 2;           // time-based: sequential jobs wrap to offset 0 at the end
  uint64_t max_ios = 0;           // stop after this many reads (0: only the runtime counts)
  std::string kind = "uring";     // make_read_backend kind
  uint64_t seed = 1;              // random offsets
  double sample_s = 0.5;          // bandwidth / IOPS sample interval (fio's bwavgtime: 500 ms)
};

// min/max/mean/stddev over N values in nanoseconds, fio's slat/clat/lat objects.
struct LatencyStats {
  uint64_t min = 0, max = 0, n = 0;
  double mean = 0, stddev = 0;
};

struct IoJobResult {
  IoJobSpec spec;
  std::string backend;          // the backend that ran ("uring", or "pread" after a fallback)
  uint64_t file_size = 0;
  uint64_t bytes = 0;           // bytes read
  uint64_t ios = 0;             // reads completed
  uint64_t short_ios = 0;       // reads that returned fewer bytes than asked
  double seconds = 0;           // first submit to last completion
  std::vector<uint64_t> clat_ns;          // every read's completion latency, sorted
  std::vector<double> bw_samples;         // bytes/s per full sample interval
  std::vector<double> iops_samples;       // reads/s per full sample interval
  // Reads per submit() call and per reap, in fio's iodepth_submit/iodepth_complete buckets:
  // 0, 1-4, 5-8, 9-16, 17-32, 33-64, more.
  uint64_t submit_batches[7] = {}, complete_batches[7] = {};
  IoStats stats;                // the backend's own counters
  double usr_s = 0, sys_s = 0;  // CPU time of the job's thread
  uint64_t ctx = 0, majf = 0, minf = 0;

  double bw() const { return seconds > 0 ? double(bytes) / seconds : 0; }    // bytes/s
  double iops() const { return seconds > 0 ? double(ios) / seconds : 0; }
  LatencyStats clat() const;
  // The p-th percentile (0 < p <= 100) of clat_ns by nearest rank; 0 when nothing was read.
  uint64_t clat_percentile(double p) const;
};

// Runs one job. strata::Error naming the file when it cannot be opened, is smaller than one
// block, the block size is not a multiple of its alignment, or a read fails.
IoJobResult run_io_job(const IoJobSpec& spec);

// Runs the jobs at the same time (one thread and one backend each, started together) and
// returns their results in order. The first job's error is rethrown after all have stopped.
std::vector<IoJobResult> run_io_jobs_together(const std::vector<IoJobSpec>& specs);

// The bucket of submit_batches / complete_batches that a batch of n reads falls in.
int io_batch_bucket(uint64_t n);

// fio's default completion-latency percentiles: 1, 5, 10, 20, ..., 99.95, 99.99.
const std::vector<double>& fio_percentiles();

// Writes `size` bytes of incompressible data to `path` (created or replaced) and fsyncs it, so
// reads of it reach the drive. strata::Error naming the path on failure.
void write_test_file(const std::string& path, uint64_t size);

}  // namespace strata::storage
