#include "batch/runner.h"

#include "batch/log.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "batch/batch_input.h"
#include "batch/batch_record.h"
#include "batch/batch_request.h"
#include "batch/output_file.h"
#include "storage/error.h"

namespace strata::batch {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Pending {
  std::streamoff offset;  // where the line starts in the input (re-read when its turn comes)
  int64_t line;
};

// A request in the engine. Its Outcome is filled on the engine thread until on_finish, then
// handed to the runner thread through `Finished`.
struct Job {
  InputLine in;
  server::PreparedRequest prepared;
  server::Outcome outcome;
};

struct Finished {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Job*> jobs;
};

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (std::filesystem::equivalent(a, b, ec)) return true;
  return std::filesystem::weakly_canonical(a, ec) == std::filesystem::weakly_canonical(b, ec);
}

class Runner {
 public:
  Runner(const RunOptions& o, engine::Engine& eng, const server::ModelContext& m, const std::atomic<bool>& stop,
         const std::function<void(const RunCounts&)>& progress)
      : o_(o), eng_(eng), m_(m), stop_(stop), progress_(progress) {}

  RunCounts run() {
    std::set<std::string, std::less<>> done;
    out_ = std::make_unique<OutputFile>(o_.output, done);
    if (!o_.errors.empty() && !same_file(o_.errors, o_.output)) err_ = std::make_unique<OutputFile>(o_.errors, done);
    const uint64_t found = out_->records_kept() + (err_ ? err_->records_kept() : 0);
    scan_input(done);
    if (c_.already < found)
      batch_log()->warn("{} records in the output match no line of this shard of {} (another input or shard?)",
                   found - c_.already, o_.input);
    generate();
    out_->sync();
    if (err_) err_->sync();
    c_.seconds = since(t0_);
    return c_;
  }

 private:
  // Every line is parsed (duplicates can span shards); this shard's get an error record now, are
  // skipped when already answered, or wait for the engine.
  void scan_input(const std::set<std::string, std::less<>>& done) {
    std::ifstream in(o_.input, std::ios::binary);
    if (!in) fail("{}: cannot open the input file", o_.input);
    CustomIdClaims claims;
    std::string text;
    int64_t index = 0;
    for (std::streamoff offset = 0; std::getline(in, text); ++index) {
      const std::streamoff start = offset;
      offset += std::streamoff(text.size() + 1);
      if (is_blank_line(text)) continue;
      const int64_t line_no = index + 1;
      ParsedLine p = claims.claim(parse_input_line(text, line_no));
      if (!o_.shard.takes(index)) continue;
      ++c_.requests;
      if (done.contains(record_id(line_no, custom_id_of(p).value_or("")))) {
        ++c_.already;
        continue;
      }
      if (const auto* e = std::get_if<LineError>(&p)) {
        write(error_record(*e), false);
      } else {
        pending_.push_back({start, line_no});
      }
    }
    if (in.bad()) fail("{}: read error", o_.input);
  }

  void write(const std::string& line, bool ok) {
    (ok || !err_ ? *out_ : *err_).append(line);
    ++(ok ? c_.ok : c_.failed);
  }

  // The next pending line as a Job in the engine; false when it was answered without one.
  bool submit(const Pending& pd, std::ifstream& in, Finished& fin) {
    in.clear();
    in.seekg(pd.offset);
    std::string text;
    std::getline(in, text);
    ParsedLine p = parse_input_line(text, pd.line);
    if (!std::holds_alternative<InputLine>(p)) fail("{} line {}: changed while the batch ran", o_.input, pd.line);
    auto job = std::make_unique<Job>();
    job->in = std::move(std::get<InputLine>(p));
    try {
      job->prepared = prepare_request(job->in, m_, o_.created);
    } catch (const server::ApiError& e) {
      write(refused_record(pd.line, job->in.custom_id, e), false);
      return false;
    } catch (const Error& e) {  // as the server answers a strata::Error from the mapping
      write(refused_record(pd.line, job->in.custom_id, server::ApiError(400, e.what())), false);
      return false;
    }
    Job* j = job.get();
    engine::Sink sink;
    sink.on_token = [j](const engine::TokenEvent& t) { j->outcome.add(t); };
    sink.on_finish = [j, &fin](const engine::FinishEvent& f) {
      j->outcome.end(f);
      {
        std::lock_guard lk(fin.mu);
        fin.jobs.push_back(j);
      }
      fin.cv.notify_one();
    };
    const engine::SubmitResult r = eng_.submit(job->prepared.request, std::move(sink));
    if (!r.accepted) {
      const int status = r.http_status ? r.http_status : 503;
      write(refused_record(pd.line, job->in.custom_id,
                           server::ApiError(status, r.error, "", status == 400 ? "invalid_request" : "unavailable")),
            false);
      return false;
    }
    ids_.emplace(j, r.id);
    jobs_.push_back(std::move(job));
    return true;
  }

  void answer(Job* j) {
    const auto it = std::find_if(jobs_.begin(), jobs_.end(), [&](const auto& p) { return p.get() == j; });
    std::unique_ptr<Job> job = std::move(*it);
    jobs_.erase(it);
    ids_.erase(j);
    // A cancelled request (the run is stopping) is not answered: the next run redoes it.
    if (job->outcome.finish.reason == engine::FinishReason::Cancelled) return;
    try {
      const json body = response_body(job->prepared, job->outcome, m_);
      write(answer_record(job->in.line, job->in.custom_id, body), true);
      c_.prompt_tokens += uint64_t(job->outcome.finish.prompt_tokens);
      c_.generated_tokens += uint64_t(job->outcome.finish.completion_tokens);
    } catch (const server::ApiError& e) {
      write(refused_record(job->in.line, job->in.custom_id, e), false);
    }
  }

  void generate() {
    const size_t window = o_.window ? o_.window : size_t(2 * eng_.options().max_batch);
    std::ifstream in(o_.input, std::ios::binary);
    if (!in) fail("{}: cannot open the input file", o_.input);
    Finished fin;
    size_t next = 0;
    auto last_sync = Clock::now();
    bool cancelled = false;
    while (next < pending_.size() || !jobs_.empty()) {
      if (stop_.load() && !cancelled) {
        // Stop: what is running is cancelled (and redone by the next run); wait for every
        // sink to have fired, since they point into jobs_.
        c_.stopped = cancelled = true;
        for (const auto& [j, id] : ids_) eng_.cancel(id);
        next = pending_.size();
      }
      while (!cancelled && jobs_.size() < window && next < pending_.size()) submit(pending_[next++], in, fin);
      std::vector<Job*> ready;
      {
        std::unique_lock lk(fin.mu);
        fin.cv.wait_for(lk, std::chrono::milliseconds(200), [&] { return !fin.jobs.empty(); });
        ready.swap(fin.jobs);
      }
      for (Job* j : ready) answer(j);
      if (since(last_sync) >= o_.sync_interval_s) {
        out_->sync();
        if (err_) err_->sync();
        last_sync = Clock::now();
      }
      c_.seconds = since(t0_);
      if (progress_) progress_(c_);
    }
  }

  const RunOptions& o_;
  engine::Engine& eng_;
  const server::ModelContext& m_;
  const std::atomic<bool>& stop_;
  const std::function<void(const RunCounts&)>& progress_;
  Clock::time_point t0_ = Clock::now();
  std::unique_ptr<OutputFile> out_, err_;
  std::vector<Pending> pending_;
  std::vector<std::unique_ptr<Job>> jobs_;
  std::map<Job*, engine::RequestId> ids_;
  RunCounts c_;
};

}  // namespace

RunCounts run_batch(const RunOptions& o, engine::Engine& eng, const server::ModelContext& m,
                    const std::atomic<bool>& stop, const std::function<void(const RunCounts&)>& progress) {
  return Runner(o, eng, m, stop, progress).run();
}

}  // namespace strata::batch
