#include "storage/sequential_read.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "storage/aligned_buffer.h"
#include "storage/error.h"
#include "storage/read_backend.h"

namespace strata::storage {
namespace {

struct Piece {
  uint32_t file;
  uint64_t offset, length;
};

// Issues every piece (aligned, at most `chunk` long) with `queue_depth` in flight, into one
// registered region as the streaming pool is, so both go through the same read path.
SequentialReadResult read_pieces(ReadBackend& b, const std::vector<Piece>& pieces, uint64_t chunk,
                                 unsigned queue_depth) {
  AlignedBuffer region(static_cast<size_t>(chunk) * queue_depth, std::max<uint64_t>(b.alignment(), 4096));
  b.register_buffer(region.data(), region.size());
  auto slot_ptr = [&](unsigned i) { return region.data() + static_cast<size_t>(i) * chunk; };
  const auto t0 = std::chrono::steady_clock::now();
  size_t next = 0, done = 0;
  uint64_t bytes = 0;
  std::vector<unsigned> free_slots;
  for (unsigned i = 0; i < queue_depth; ++i) free_slots.push_back(i);
  std::vector<Completion> cs;
  while (done < pieces.size()) {
    std::vector<ReadRequest> reqs;
    while (!free_slots.empty() && next < pieces.size()) {
      const unsigned slot = free_slots.back();
      free_slots.pop_back();
      const Piece& p = pieces[next++];
      reqs.push_back({p.file, p.offset, p.length, slot_ptr(slot), slot});
    }
    if (!reqs.empty()) b.submit(reqs);
    cs.clear();
    b.reap(cs, true, std::chrono::milliseconds(1000));
    for (const Completion& c : cs) {
      if (c.error) fail("{}", c.message);
      bytes += c.bytes;
      ++done;
      free_slots.push_back(static_cast<unsigned>(c.user_data));
    }
  }
  SequentialReadResult r;
  r.bytes = bytes;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

std::unique_ptr<ReadBackend> make_backend(const std::string& kind, uint64_t chunk, unsigned queue_depth) {
  BackendOptions o;
  o.queue_depth = queue_depth;
  o.chunk_bytes = chunk;
  o.threads = queue_depth;
  // The device array: a placed (striped) model is read from all its drives at once.
  return make_device_array(kind, o);
}

}  // namespace

SequentialReadResult measure_sequential_read(const std::string& path, const std::string& kind, uint64_t chunk,
                                             unsigned queue_depth, uint64_t max_bytes) {
  auto b = make_backend(kind, chunk, queue_depth);
  const uint32_t f = b->add_file(path);
  const uint64_t align = b->alignment();
  const uint64_t end = std::min(b->file_size(f), max_bytes) / align * align;
  std::vector<Piece> pieces;
  for (uint64_t at = 0; at < end; at += chunk) pieces.push_back({f, at, std::min(chunk, end - at)});
  return read_pieces(*b, pieces, chunk, queue_depth);
}

SequentialReadResult measure_extent_read(const std::vector<std::string>& paths, const std::vector<ReadExtent>& extents,
                                         const std::string& kind, uint64_t chunk, unsigned queue_depth) {
  auto b = make_backend(kind, chunk, queue_depth);
  std::vector<uint32_t> ids;
  for (const auto& p : paths) ids.push_back(b->add_file(p));
  const uint64_t align = b->alignment();
  std::vector<Piece> pieces;
  for (const ReadExtent& e : extents) {
    if (e.file >= ids.size()) fail("read extent: file index {} out of range ({} files)", e.file, ids.size());
    const uint64_t size = b->file_size(ids[e.file]);
    const uint64_t begin = e.offset / align * align;
    const uint64_t end = std::min((e.offset + e.length + align - 1) / align * align, (size + align - 1) / align * align);
    for (uint64_t at = begin; at < end; at += chunk) pieces.push_back({ids[e.file], at, std::min(chunk, end - at)});
  }
  return read_pieces(*b, pieces, chunk, queue_depth);
}

}  // namespace strata::storage
