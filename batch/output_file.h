// An append-only JSONL file that survives being killed at any moment. Opening it keeps every
// complete record already there and cuts a torn last line (a write the kill interrupted), so a
// resumed run knows exactly which input lines are answered and never writes one twice. Each
// record goes out in one write(2) on an O_APPEND descriptor; sync() is fsync(2). What is on
// disk when: a record is in the page cache (safe from kill -9) as soon as append() returns,
// and durable (safe from power loss) after the next sync().
#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

namespace strata::batch {

class OutputFile {
 public:
  // Creates `path` or opens it for resuming; adds the ids of its records to `done`. strata::Error
  // when a line that is not the last is not a record (another program's file, or damage a
  // resume must not paper over).
  OutputFile(std::string path, std::set<std::string, std::less<>>& done);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  void append(std::string_view line);  // a whole line, '\n' included
  void sync();                         // fsync when something was written since the last one
  const std::string& path() const { return path_; }
  uint64_t records_kept() const { return kept_; }   // complete records found at open
  uint64_t bytes_dropped() const { return dropped_; }  // torn tail cut at open

 private:
  void write_all(std::string_view bytes);

  std::string path_;
  int fd_ = -1;
  bool dirty_ = false;
  int split_ms_ = 0;  // STRATA_BATCH_SPLIT_WRITES (tests only): see append()
  uint64_t kept_ = 0, dropped_ = 0;
};

}  // namespace strata::batch
