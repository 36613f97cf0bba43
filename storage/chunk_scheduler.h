// Request bookkeeping shared by the uring and pread backends: splits requests into chunks, hands
// chunks out in submission order as the backend has room, folds chunk results (end of file,
// errors, cancellation) into exactly one Completion per request. The backend does the actual I/O
// (and resubmits short reads itself). Not thread-safe: used under the backend's lock.
#pragma once
#include <cstdint>
#include <deque>
#include <list>
#include <optional>
#include <string>
#include <vector>

#include "storage/backend_common.h"

namespace strata::storage::detail {

struct PendingRequest;

struct Chunk {
  PendingRequest* request = nullptr;
  const OpenedFile* file = nullptr;
  uint64_t offset = 0;  // in the file
  uint64_t length = 0;
  char* dst = nullptr;
};

struct PendingRequest {
  ReadRequest req;
  const OpenedFile* file = nullptr;
  uint64_t chunk_bytes = 0;
  uint64_t carved = 0;              // bytes already handed out as chunks
  unsigned running = 0;             // chunks handed out and not yet finished
  int32_t error = 0;
  std::string message;
  uint64_t data_end = UINT64_MAX;   // file offset where the data stopped (end of file), if seen
  bool cancelled = false;
  bool lost_chunks = false;         // cancellation dropped or aborted a chunk
  bool queued = false;              // still has chunks to hand out
  Clock::time_point submitted{};
  std::list<PendingRequest>::iterator self;
};

class ChunkScheduler {
 public:
  explicit ChunkScheduler(size_t chunk_bytes) : chunk_bytes_(chunk_bytes) {}

  // Accepts a request. `file` is null for an unknown id. Invalid requests (unknown file,
  // misaligned) and empty ones complete at once.
  void add(const ReadRequest& r, const OpenedFile* file, uint32_t n_files, Clock::time_point now);
  // The next chunk to issue, in submission order, or nothing.
  std::optional<Chunk> next_chunk();
  // A chunk is over: `result` is the bytes read from its start (fewer than its length means end
  // of file) or a negative errno (-ECANCELED when the backend abandoned it after a cancel).
  void chunk_done(const Chunk& c, int64_t result, Clock::time_point now);
  // Marks requests with this user_data cancelled and drops their chunks not yet issued. Returns
  // those that still have chunks running (the backend may try to abort them).
  std::vector<const PendingRequest*> cancel(uint64_t user_data, Clock::time_point now);

  size_t take_done(std::vector<Completion>& out);
  bool has_done() const { return !done_.empty(); }
  bool has_queued() const { return !queue_.empty(); }
  // Requests accepted and not yet taken by take_done.
  size_t outstanding() const { return active_.size() + done_.size(); }

  StatsRecorder stats;

 private:
  void stop_carving(PendingRequest& p);
  void finish_if_over(PendingRequest& p, Clock::time_point now);
  void complete_now(const ReadRequest& r, int32_t error, std::string message, Clock::time_point now);

  size_t chunk_bytes_;
  std::list<PendingRequest> active_;
  std::deque<PendingRequest*> queue_;
  std::deque<Completion> done_;
};

}  // namespace strata::storage::detail
