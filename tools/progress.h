// Progress of a long phase (load, synth, perplexity, bench) on stderr. Nothing is shown for a
// phase that ends within about two seconds. On a terminal one bar is redrawn in place:
//   loading  [##########..........]  50%  1.00 GiB of 2.00 GiB  1.20 GiB/s  ETA 1 s
// otherwise (a log file, a pipe) one plain line every five seconds. STRATA_PROGRESS=0 turns it
// off, =1 forces the terminal form, =lines the plain one; STRATA_PROGRESS_AFTER=SECONDS changes
// the quiet start (tests use 0). update() may be called from any thread.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

namespace strata::tools {

class Progress {
 public:
  enum class Unit { Bytes, Items };
  // `unit_name` names Items ("tokens", "chunks"); Bytes print as sizes and rates.
  Progress(std::string label, uint64_t total, Unit unit = Unit::Bytes, std::string unit_name = {});
  ~Progress();  // finish()
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void set_total(uint64_t total) { total_.store(total); }
  void update(uint64_t done);
  void add(uint64_t delta) { update(done_.fetch_add(delta) + delta); }
  // More figures for one phase: `text` is appended to the bar (e.g. "41.2 tok/s"); with `fields`
  // the plain form becomes one JSON object per line ({"progress": label, "done", "total",
  // "elapsed_s", "eta_s", ...fields}) for logs that machines read (batch jobs). Set before update().
  void set_detail(std::function<std::string()> text, std::function<nlohmann::json()> fields = {});
  // Ends the bar's line if one was drawn (idempotent).
  void finish();

 private:
  void draw(uint64_t done, bool final);
  std::string amount(uint64_t v) const;

  std::string label_, unit_name_;
  std::function<std::string()> detail_text_;
  std::function<nlohmann::json()> detail_fields_;
  Unit unit_;
  std::atomic<uint64_t> total_, done_{0};
  bool tty_ = false, enabled_ = true, drawn_ = false, finished_ = false;
  double quiet_s_ = 2.0;  // nothing is shown for a phase shorter than this
  std::chrono::steady_clock::time_point start_, last_draw_;
  std::mutex mu_;
};

}  // namespace strata::tools
