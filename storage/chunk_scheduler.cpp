#include "storage/chunk_scheduler.h"

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

namespace strata::storage::detail {

void ChunkScheduler::complete_now(const ReadRequest& r, int32_t error, std::string message,
                                  Clock::time_point now) {
  Completion c;
  c.user_data = r.user_data;
  c.error = error;
  c.message = std::move(message);
  stats.request_finished(c, Clock::duration::zero());
  done_.push_back(std::move(c));
}

void ChunkScheduler::add(const ReadRequest& r, const OpenedFile* file, uint32_t n_files,
                         Clock::time_point now) {
  if (file == nullptr) {
    complete_now(r, -EBADF,
                 fmt::format("read backend: file id {} was never added ({} files)", r.file, n_files),
                 now);
    return;
  }
  const size_t a = file->alignment;
  const auto addr = reinterpret_cast<uintptr_t>(r.dst);
  if (r.offset % a != 0 || r.length % a != 0 || addr % a != 0 || (r.length > 0 && !r.dst)) {
    complete_now(r, -EINVAL,
                 fmt::format("{}: read of {} bytes at offset {} into {} is not aligned to {} bytes",
                             file->path, r.length, r.offset, r.dst, a),
                 now);
    return;
  }
  if (r.length == 0) {
    complete_now(r, 0, {}, now);
    return;
  }
  PendingRequest& p = active_.emplace_back();
  p.self = std::prev(active_.end());
  p.req = r;
  p.file = file;
  // Chunk boundaries must stay aligned for O_DIRECT.
  p.chunk_bytes = std::max<uint64_t>(a, chunk_bytes_ / a * a);
  p.submitted = now;
  p.queued = true;
  queue_.push_back(&p);
}

std::optional<Chunk> ChunkScheduler::next_chunk() {
  if (queue_.empty()) return std::nullopt;
  PendingRequest* p = queue_.front();
  Chunk c;
  c.request = p;
  c.file = p->file;
  c.offset = p->req.offset + p->carved;
  c.length = std::min(p->chunk_bytes, p->req.length - p->carved);
  c.dst = static_cast<char*>(p->req.dst) + p->carved;
  p->carved += c.length;
  p->running++;
  if (p->carved == p->req.length) {
    p->queued = false;
    queue_.pop_front();
  }
  stats.counters.chunks++;
  return c;
}

void ChunkScheduler::stop_carving(PendingRequest& p) {
  if (!p.queued) return;
  queue_.erase(std::find(queue_.begin(), queue_.end(), &p));
  p.queued = false;
}

void ChunkScheduler::chunk_done(const Chunk& c, int64_t result, Clock::time_point now) {
  PendingRequest& p = *c.request;
  p.running--;
  if (result == -ECANCELED) {
    p.lost_chunks = true;
    stop_carving(p);
  } else if (result < 0) {
    if (p.error == 0) {
      p.error = static_cast<int32_t>(result);
      p.message = fmt::format("{}: {} reading {} bytes at offset {}", p.file->path,
                              errno_text(static_cast<int>(result)), c.length, c.offset);
    }
    stop_carving(p);  // the request has failed: no point reading the rest
  } else if (static_cast<uint64_t>(result) < c.length) {
    p.data_end = std::min(p.data_end, c.offset + static_cast<uint64_t>(result));
    stop_carving(p);  // later chunks lie past the end of the file
  }
  finish_if_over(p, now);
}

std::vector<const PendingRequest*> ChunkScheduler::cancel(uint64_t user_data, Clock::time_point now) {
  std::vector<const PendingRequest*> running;
  for (auto it = active_.begin(); it != active_.end();) {
    PendingRequest& p = *it++;  // finish_if_over may erase p
    if (p.req.user_data != user_data || p.cancelled) continue;
    p.cancelled = true;
    if (p.queued) {
      p.lost_chunks = true;
      stop_carving(p);
    }
    if (p.running > 0)
      running.push_back(&p);
    else
      finish_if_over(p, now);
  }
  return running;
}

void ChunkScheduler::finish_if_over(PendingRequest& p, Clock::time_point now) {
  if (p.queued || p.running > 0) return;
  Completion c;
  c.user_data = p.req.user_data;
  if (p.error != 0) {
    c.error = p.error;
    c.message = std::move(p.message);
  } else if (p.lost_chunks) {
    c.error = -ECANCELED;
    c.message = fmt::format("{}: read of {} bytes at offset {} cancelled", p.file->path,
                            p.req.length, p.req.offset);
  } else {
    c.bytes = p.data_end == UINT64_MAX ? p.req.length
                                       : std::min(p.req.length, p.data_end - p.req.offset);
  }
  stats.request_finished(c, now - p.submitted);
  done_.push_back(std::move(c));
  active_.erase(p.self);
}

size_t ChunkScheduler::take_done(std::vector<Completion>& out) {
  size_t n = done_.size();
  for (auto& c : done_) out.push_back(std::move(c));
  done_.clear();
  return n;
}

}  // namespace strata::storage::detail
