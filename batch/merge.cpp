#include "batch/merge.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "batch/batch_input.h"
#include "batch/batch_record.h"
#include "storage/error.h"

namespace strata::batch {
namespace {

struct Held {
  std::string line;  // without '\n'
  bool ok = false;
  size_t part = 0;
  int64_t line_in_part = 0;
};

// A file written whole and renamed into place: a merge killed halfway leaves no half file.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path) : path_(std::move(path)), tmp_(path_ + ".tmp") {
    out_.open(tmp_, std::ios::binary | std::ios::trunc);
    if (!out_) fail("{}: cannot create", tmp_);
  }
  void add(const std::string& line) { out_ << line << '\n'; }
  void commit() {
    out_.flush();
    if (!out_) fail("{}: write failed", tmp_);
    out_.close();
    const int fd = ::open(tmp_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
    std::error_code ec;
    std::filesystem::rename(tmp_, path_, ec);
    if (ec) fail("{}: cannot rename into place: {}", path_, ec.message());
  }

 private:
  std::string path_, tmp_;
  std::ofstream out_;
};

}  // namespace

MergeCounts merge_outputs(const MergeOptions& o) {
  if (o.parts.empty()) fail("batch merge: no shard outputs given");
  std::map<std::string, Held, std::less<>> held;
  for (size_t i = 0; i < o.parts.size(); ++i) {
    std::ifstream in(o.parts[i], std::ios::binary);
    if (!in) fail("{}: cannot open", o.parts[i]);
    std::string text;
    for (int64_t n = 1; std::getline(in, text); ++n) {
      if (is_blank_line(text)) continue;
      const auto rec = parse_record(text);
      if (!rec) {
        if (in.eof())  // no newline after it: the torn tail of a run that was killed
          fail("{} line {}: an incomplete last line; rerun that shard to finish it", o.parts[i], n);
        fail("{} line {}: not a strata batch record", o.parts[i], n);
      }
      const auto [it, fresh] = held.try_emplace(rec->id, Held{text, rec->ok, i, n});
      if (!fresh)
        fail("{} is doubled: {} line {} and {} line {} (custom_id {})", rec->id, o.parts[it->second.part],
             it->second.line_in_part, o.parts[i], n, rec->custom_id.value_or("none"));
    }
  }

  std::ifstream in(o.input, std::ios::binary);
  if (!in) fail("{}: cannot open the input file", o.input);
  AtomicFile out(o.output);
  std::unique_ptr<AtomicFile> errs;
  if (!o.errors.empty()) errs = std::make_unique<AtomicFile>(o.errors);
  MergeCounts c;
  std::string text;
  uint64_t missing = 0;
  std::string first_missing;
  for (int64_t n = 1; std::getline(in, text); ++n) {
    if (is_blank_line(text)) continue;
    const auto cid = custom_id_of(parse_input_line(text, n));
    const auto it = held.find(record_id(n, cid.value_or("")));
    if (it == held.end()) {
      if (!missing++) first_missing = fmt::format("line {} (custom_id {})", n, cid.value_or("none"));
      continue;
    }
    (it->second.ok || !errs ? out : *errs).add(it->second.line);
    ++c.records;
    ++(it->second.ok ? c.ok : c.failed);
    held.erase(it);
  }
  if (missing)
    fail("{} input lines have no record in the shard outputs, the first {}; run the missing shards (or "
         "finish the interrupted ones) and merge again",
         missing, first_missing);
  if (!held.empty())
    fail("{} records match no line of {}, such as {} in {} line {}; were the shards run on another input?",
         held.size(), o.input, held.begin()->first, o.parts[held.begin()->second.part],
         held.begin()->second.line_in_part);
  out.commit();
  if (errs) errs->commit();
  return c;
}

}  // namespace strata::batch
