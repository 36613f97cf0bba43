#include "storage/io_benchmark.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <filesystem>
#include <latch>
#include <memory>
#include <random>
#include <thread>

#include "storage/aligned_buffer.h"
#include "storage/error.h"
#include "storage/file.h"

namespace strata::storage {
namespace {

using Clock = std::chrono::steady_clock;

double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

struct Usage {
  double usr = 0, sys = 0;
  uint64_t ctx = 0, majf = 0, minf = 0;
};

Usage thread_usage() {
  rusage ru{};
  ::getrusage(RUSAGE_THREAD, &ru);
  Usage u;
  u.usr = double(ru.ru_utime.tv_sec) + double(ru.ru_utime.tv_usec) * 1e-6;
  u.sys = double(ru.ru_stime.tv_sec) + double(ru.ru_stime.tv_usec) * 1e-6;
  u.ctx = uint64_t(ru.ru_nvcsw + ru.ru_nivcsw);
  u.majf = uint64_t(ru.ru_majflt);
  u.minf = uint64_t(ru.ru_minflt);
  return u;
}

// One job, set up (backend, file, registered slots) before its clock starts, so jobs run
// together start their measured part at the same moment.
class Job {
 public:
  explicit Job(const IoJobSpec& s) : s_(s) {
    if (s.block_size == 0) fail("{}: block size must be positive", s.path);
    if (s.queue_depth == 0) fail("{}: queue depth must be positive", s.path);
    if (!(s.runtime_s > 0) && s.max_ios == 0) fail("{}: runtime must be positive (got {})", s.path, s.runtime_s);
    BackendOptions o;
    o.queue_depth = s.queue_depth;
    // One request is one kernel read (chunks are whole 4 KiB pages, at most 1 GiB).
    o.chunk_bytes = static_cast<size_t>(std::min<uint64_t>((s.block_size + 4095) / 4096 * 4096, uint64_t(1) << 30));
    o.threads = s.queue_depth;                          // pread: one worker per outstanding read
    o.direct = true;
    b_ = make_read_backend(s.kind, o);
    file_ = b_->add_file(s.path);
    r_.spec = s;
    r_.backend = b_->name();
    r_.file_size = b_->file_size(file_);
    const uint64_t align = b_->alignment();
    if (s.block_size % align != 0)
      fail("{}: block size {} is not a multiple of the file's O_DIRECT alignment ({} bytes)", s.path, s.block_size,
           align);
    if (r_.file_size < s.block_size)
      fail("{}: {} bytes, smaller than one {}-byte block", s.path, r_.file_size, s.block_size);
    blocks_ = r_.file_size / s.block_size;
    region_ = AlignedBuffer(static_cast<size_t>(s.block_size) * s.queue_depth, std::max<size_t>(align, 4096));
    b_->register_buffer(region_.data(), region_.size());
  }

  IoJobResult run() {
    const IoJobSpec& s = s_;
    std::mt19937_64 rng(s.seed);
    std::uniform_int_distribution<uint64_t> pick(0, blocks_ - 1);
    uint64_t seq_block = 0, issued = 0;
    auto next_offset = [&] {
      if (s.pattern == IoPattern::random) return pick(rng) * s.block_size;
      const uint64_t off = seq_block * s.block_size;
      seq_block = (seq_block + 1) % blocks_;  // time-based: wrap to the start
      return off;
    };
    auto slot_ptr = [&](uint64_t i) { return region_.data() + static_cast<size_t>(i) * s.block_size; };
    std::vector<Clock::time_point> submitted(s.queue_depth);
    std::vector<uint64_t> win_bytes, win_ios;
    r_.clat_ns.reserve(1 << 16);

    const Usage u0 = thread_usage();
    const Clock::time_point t0 = Clock::now();
    const Clock::time_point deadline = t0 + std::chrono::duration_cast<Clock::duration>(
                                                std::chrono::duration<double>(s.max_ios ? 1e9 : s.runtime_s));
    Clock::time_point last = t0, last_progress = t0;
    std::vector<ReadRequest> reqs;
    auto issue = [&](uint64_t slot) {
      reqs.push_back({file_, next_offset(), s.block_size, slot_ptr(slot), slot});
      ++issued;
    };
    for (unsigned i = 0; i < s.queue_depth && (!s.max_ios || issued < s.max_ios); ++i) issue(i);
    auto submit = [&] {
      if (reqs.empty()) return;
      const Clock::time_point t = Clock::now();
      for (const ReadRequest& q : reqs) submitted[q.user_data] = t;
      ++r_.submit_batches[io_batch_bucket(reqs.size())];
      b_->submit(reqs);
      reqs.clear();
    };
    size_t outstanding = reqs.size();
    submit();
    std::string error;
    std::vector<Completion> cs;
    while (outstanding > 0) {
      cs.clear();
      b_->reap(cs, true, std::chrono::milliseconds(1000));
      const Clock::time_point now = Clock::now();
      if (cs.empty()) {
        if (secs(now - last_progress) > 60)
          fail("{}: no read completed in 60 s ({} outstanding)", s.path, outstanding);
        continue;
      }
      last_progress = last = now;
      ++r_.complete_batches[io_batch_bucket(cs.size())];
      const bool time_up = now >= deadline;
      const size_t w = static_cast<size_t>(secs(now - t0) / s.sample_s);
      if (win_bytes.size() <= w) win_bytes.resize(w + 1), win_ios.resize(w + 1);
      for (const Completion& c : cs) {
        --outstanding;
        if (c.error) {
          if (error.empty()) error = c.message;
          continue;
        }
        r_.clat_ns.push_back(static_cast<uint64_t>(std::chrono::nanoseconds(now - submitted[c.user_data]).count()));
        r_.bytes += c.bytes;
        ++r_.ios;
        if (c.bytes < s.block_size) ++r_.short_ios;
        win_bytes[w] += c.bytes;
        ++win_ios[w];
        if (!time_up && error.empty() && (!s.max_ios || issued < s.max_ios)) issue(c.user_data);
      }
      outstanding += reqs.size();
      submit();
    }
    if (!error.empty()) fail("{}", error);
    const Usage u1 = thread_usage();
    r_.seconds = secs(last - t0);
    r_.usr_s = u1.usr - u0.usr;
    r_.sys_s = u1.sys - u0.sys;
    r_.ctx = u1.ctx - u0.ctx;
    r_.majf = u1.majf - u0.majf;
    r_.minf = u1.minf - u0.minf;
    // Only whole sample intervals count (fio: a job shorter than one interval has no samples).
    const size_t full = static_cast<size_t>(r_.seconds / s.sample_s);
    for (size_t i = 0; i < full && i < win_bytes.size(); ++i) {
      r_.bw_samples.push_back(double(win_bytes[i]) / s.sample_s);
      r_.iops_samples.push_back(double(win_ios[i]) / s.sample_s);
    }
    std::sort(r_.clat_ns.begin(), r_.clat_ns.end());
    r_.stats = b_->stats();
    return std::move(r_);
  }

 private:
  IoJobSpec s_;
  std::unique_ptr<ReadBackend> b_;
  uint32_t file_ = 0;
  uint64_t blocks_ = 0;
  AlignedBuffer region_;
  IoJobResult r_;
};

}  // namespace

int io_batch_bucket(uint64_t n) {
  if (n == 0) return 0;
  int b = 1;
  for (uint64_t top = 4; n > top && b < 6; top *= 2) ++b;
  return b;
}

const char* io_pattern_name(IoPattern p) { return p == IoPattern::sequential ? "read" : "randread"; }

LatencyStats IoJobResult::clat() const {
  LatencyStats l;
  l.n = clat_ns.size();
  if (l.n == 0) return l;
  l.min = clat_ns.front();
  l.max = clat_ns.back();
  double sum = 0;
  for (uint64_t v : clat_ns) sum += double(v);
  l.mean = sum / double(l.n);
  double sq = 0;
  for (uint64_t v : clat_ns) sq += (double(v) - l.mean) * (double(v) - l.mean);
  l.stddev = l.n > 1 ? std::sqrt(sq / double(l.n - 1)) : 0;
  return l;
}

uint64_t IoJobResult::clat_percentile(double p) const {
  if (clat_ns.empty()) return 0;
  const double rank = std::ceil(p / 100.0 * double(clat_ns.size()));
  const size_t i = static_cast<size_t>(std::clamp(rank, 1.0, double(clat_ns.size()))) - 1;
  return clat_ns[i];
}

IoJobResult run_io_job(const IoJobSpec& spec) {
  Job j(spec);
  return j.run();
}

std::vector<IoJobResult> run_io_jobs_together(const std::vector<IoJobSpec>& specs) {
  const size_t n = specs.size();
  std::vector<IoJobResult> results(n);
  std::vector<std::exception_ptr> errors(n);
  std::latch ready(static_cast<std::ptrdiff_t>(n));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      std::unique_ptr<Job> job;
      try {
        job = std::make_unique<Job>(specs[i]);
      } catch (...) {
        errors[i] = std::current_exception();
      }
      ready.arrive_and_wait();  // every drive set up: start the clocks together
      if (!job) return;
      try {
        results[i] = job->run();
      } catch (...) {
        errors[i] = std::current_exception();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
  return results;
}

const std::vector<double>& fio_percentiles() {
  static const std::vector<double> p = {1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 99.5, 99.9, 99.95, 99.99};
  return p;
}

void write_test_file(const std::string& path, uint64_t size) {
  File f = File::create(path);
  try {
    AlignedBuffer block(1 << 20);
    auto* words = reinterpret_cast<uint64_t*>(block.data());
    const size_t n_words = block.size() / sizeof(uint64_t);
    uint64_t z = 0x9e3779b97f4a7c15ull ^ size;
    for (uint64_t done = 0; done < size;) {
      for (size_t i = 0; i < n_words; ++i) {  // splitmix64: incompressible, never repeats a block
        z += 0x9e3779b97f4a7c15ull;
        uint64_t x = z;
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
        words[i] = x ^ (x >> 31);
      }
      const size_t n = static_cast<size_t>(std::min<uint64_t>(block.size(), size - done));
      f.write_all(block.data(), n);
      done += n;
    }
    if (::fsync(f.fd()) != 0) fail("{}: fsync failed: {}", path, std::strerror(errno));
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(path, ec);
    throw;
  }
}

}  // namespace strata::storage
