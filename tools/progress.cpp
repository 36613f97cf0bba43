#include "tools/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "tools/units.h"

namespace strata::tools {
namespace {
constexpr double kTtyInterval = 0.1;    // redraws per second on a terminal: 10
constexpr double kLogInterval = 5.0;    // a plain line every 5 s otherwise
double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

Progress::Progress(std::string label, uint64_t total, Unit unit, std::string unit_name)
    : label_(std::move(label)), unit_name_(std::move(unit_name)), unit_(unit), total_(total) {
  tty_ = ::isatty(STDERR_FILENO) == 1;
  if (const char* e = std::getenv("STRATA_PROGRESS")) {
    if (std::string(e) == "0") enabled_ = false;
    if (std::string(e) == "1") tty_ = true;
    if (std::string(e) == "lines") tty_ = false;
  }
  if (const char* e = std::getenv("STRATA_PROGRESS_AFTER")) quiet_s_ = std::atof(e);
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

Progress::~Progress() { finish(); }

std::string Progress::amount(uint64_t v) const {
  if (unit_ == Unit::Bytes) return format_bytes(double(v));
  return fmt::format("{}", v);
}

void Progress::update(uint64_t done) {
  done_.store(done);
  if (!enabled_) return;
  std::unique_lock lock(mu_, std::try_to_lock);
  if (!lock.owns_lock() || finished_) return;
  const double elapsed = seconds_since(start_);
  if (elapsed < quiet_s_) return;
  if (drawn_ && seconds_since(last_draw_) < (tty_ ? kTtyInterval : kLogInterval)) return;
  draw(done, false);
}

void Progress::draw(uint64_t done, bool final) {
  const uint64_t total = total_.load();
  const double elapsed = seconds_since(start_);
  const double frac = total ? std::min(1.0, double(done) / double(total)) : 0.0;
  const double rate = elapsed > 0 ? double(done) / elapsed : 0;
  std::string of = total ? fmt::format("{} of {}", amount(done), amount(total)) : amount(done);
  if (unit_ == Unit::Items && !unit_name_.empty()) of += " " + unit_name_;
  const std::string speed = unit_ == Unit::Bytes ? format_rate(rate)
                                                 : fmt::format("{:.1f} {}/s", rate, unit_name_.empty() ? "items" : unit_name_);
  std::string eta;
  if (!final && total && done > 0 && done < total) eta = "  ETA " + format_duration((double(total) - double(done)) / rate);
  if (final) eta = "  in " + format_duration(elapsed);
  if (detail_text_) eta = "  " + detail_text_() + eta;
  std::string line;
  if (!tty_ && detail_fields_) {
    nlohmann::ordered_json j = {{"progress", label_}, {"done", done}, {"total", total}, {"elapsed_s", elapsed}};
    j["eta_s"] = !final && total && done > 0 && done < total ? nlohmann::ordered_json((double(total) - double(done)) / rate)
                                                              : nlohmann::ordered_json(nullptr);
    const nlohmann::json extra = detail_fields_();  // items() must not outlive it
    for (const auto& [k, v] : extra.items()) j[k] = v;
    line = j.dump() + "\n";
  } else if (tty_) {
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(frac * kWidth);
    line = fmt::format("\r{}  [{}{}] {:3.0f}%  {}  {}{}\x1b[K", label_, std::string(filled, '#'),
                       std::string(kWidth - filled, '.'), 100 * frac, of, speed, eta);
  } else {
    line = fmt::format("{}: {:.0f}% ({}, {}{})\n", label_, 100 * frac, of, speed, eta);
  }
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
  drawn_ = true;
  last_draw_ = std::chrono::steady_clock::now();
}

void Progress::set_detail(std::function<std::string()> text, std::function<nlohmann::json()> fields) {
  std::lock_guard lock(mu_);
  detail_text_ = std::move(text);
  detail_fields_ = std::move(fields);
}

void Progress::finish() {
  std::lock_guard lock(mu_);
  if (finished_) return;
  finished_ = true;
  if (!enabled_ || !drawn_) return;
  draw(done_.load(), true);
  if (tty_) std::fputs("\n", stderr);
}

}  // namespace strata::tools
