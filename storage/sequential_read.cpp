#include "storage/sequential_read.h"

#include <chrono>
#include <vector>

#include "storage/aligned_buffer.h"
#include "storage/error.h"
#include "storage/read_backend.h"

namespace strata::storage {

SequentialReadResult measure_sequential_read(const std::string& path, const std::string& kind, uint64_t chunk,
                                             unsigned queue_depth, uint64_t max_bytes) {
  BackendOptions o;
  o.queue_depth = queue_depth;
  o.chunk_bytes = chunk;
  o.threads = queue_depth;
  auto b = make_read_backend(kind, o);
  const uint32_t f = b->add_file(path);
  const uint64_t align = b->alignment();
  const uint64_t end = std::min(b->file_size(f), max_bytes) / align * align;
  // One registered region, as the streaming pool is, so both are measured with the same
  // read path (io_uring read_fixed); slot i is bytes [i * chunk, (i + 1) * chunk).
  AlignedBuffer region(static_cast<size_t>(chunk) * queue_depth, std::max<uint64_t>(align, 4096));
  b->register_buffer(region.data(), region.size());
  auto slot_ptr = [&](unsigned i) { return region.data() + static_cast<size_t>(i) * chunk; };
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t next = 0, done = 0;
  std::vector<unsigned> free_slots;
  for (unsigned i = 0; i < queue_depth; ++i) free_slots.push_back(i);
  std::vector<Completion> cs;
  while (done < end) {
    std::vector<ReadRequest> reqs;
    while (!free_slots.empty() && next < end) {
      const unsigned slot = free_slots.back();
      free_slots.pop_back();
      const uint64_t n = std::min(chunk, end - next);
      reqs.push_back({f, next, (n + align - 1) / align * align, slot_ptr(slot), slot});
      next += n;
    }
    if (!reqs.empty()) b->submit(reqs);
    cs.clear();
    b->reap(cs, true, std::chrono::milliseconds(1000));
    for (const Completion& c : cs) {
      if (c.error) fail("{}", c.message);
      done += c.bytes;
      free_slots.push_back(static_cast<unsigned>(c.user_data));
      if (c.bytes == 0) done = end;  // end of file
    }
  }
  SequentialReadResult r;
  r.bytes = done;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace strata::storage
