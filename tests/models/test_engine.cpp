// The serving engine: batch invariance (a request's greedy tokens do not depend on what runs
// beside it, resident or streamed, whole or chunked prompt), and the engine thread's contract:
// every accepted request finishes exactly once, cancel frees its slot within a step, a full
// queue refuses with 429, the KV budget makes requests wait instead of failing.
#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "models/engine/engine.h"
#include "models/engine/scheduler.h"
#include "models/generate.h"
#include "models/model.h"
#include "models/synth.h"
#include "runtime/streaming_provider.h"
#include "tests/shared_data.h"

namespace fs = std::filesystem;
using namespace strata;
using engine::FinishEvent;
using engine::Request;
using engine::Sink;
using engine::TokenEvent;

namespace {

// A small random MoE written once per test run (no reference data needed).
const std::string& synth_moe() {
  static std::string path = [] {
    fs::path dir = fs::temp_directory_path() / fmt::format("strata-engine-{}", ::getpid());
    fs::create_directories(dir);
    models::SynthSpec s = models::default_synth_spec(models::SynthArch::Mixtral);
    s.n_layer = 3;
    s.n_embd = 128;
    s.n_head = 4;
    s.n_head_kv = 2;
    s.n_ff = 256;
    s.n_expert = 8;
    s.n_expert_used = 2;
    s.n_vocab = 512;
    s.ctx_len = 512;
    s.type = compute::DType::Q4_0;
    return models::synth_model(s, (dir / "moe.gguf").string()).path;
  }();
  return path;
}

struct Cleanup {
  ~Cleanup() { fs::remove_all(fs::temp_directory_path() / fmt::format("strata-engine-{}", ::getpid())); }
} cleanup;

models::LoadOptions streamed(double fraction, const std::string& path) {
  models::LoadOptions o;
  o.provider = [fraction, path](const std::vector<std::string>& paths) {
    runtime::StreamingOptions so;
    so.memory_budget = std::max<uint64_t>(4 << 20, static_cast<uint64_t>(fraction * fs::file_size(path)));
    so.io = "pread";
    return runtime::make_streaming_provider(paths, so);
  };
  return o;
}

// Random prompts of different lengths from the model's vocabulary.
std::vector<std::vector<int32_t>> prompts(const models::Model& m, int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> tok(3, static_cast<int32_t>(m.tokenizer().n_vocab() - 1));
  std::uniform_int_distribution<int> len(1, 40);
  std::vector<std::vector<int32_t>> v(n);
  for (auto& p : v) {
    p.push_back(m.tokenizer().bos() >= 0 ? m.tokenizer().bos() : 1);
    for (int i = len(rng); i > 0; --i) p.push_back(tok(rng));
  }
  return v;
}

struct Collected {
  std::vector<int32_t> tokens;
  std::string text;
  FinishEvent fin;
  int finishes = 0;
};

// Runs the requests through one scheduler on this thread; request i joins at step join[i].
std::vector<Collected> run_all(models::Model& m, const std::vector<Request>& reqs, std::vector<int> join,
                               int prefill_chunk = 256, int max_batch = 16) {
  engine::EngineOptions eo;
  eo.max_batch = max_batch;
  eo.prefill_chunk = prefill_chunk;
  engine::Scheduler sched(m, eo);
  std::vector<Collected> out(reqs.size());
  size_t next = 0;
  std::vector<size_t> order(reqs.size());
  for (size_t i = 0; i < reqs.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return join[a] < join[b]; });
  for (int step = 0; next < order.size() || !sched.idle(); ++step) {
    while (next < order.size() && join[order[next]] <= step && sched.has_room_for(reqs[order[next]])) {
      const size_t i = order[next++];
      REQUIRE(sched.check(reqs[i]) == "");
      Sink sink;
      sink.on_token = [&out, i](const TokenEvent& e) {
        out[i].tokens.push_back(e.token);
        out[i].text += e.text;
      };
      sink.on_finish = [&out, i](const FinishEvent& f) {
        out[i].fin = f;
        out[i].text += f.text_tail;
        ++out[i].finishes;
      };
      sched.admit(i + 1, reqs[i], sink, engine::now_s());
    }
    sched.step();
  }
  return out;
}

std::vector<Request> greedy_requests(const models::Model& m, int n, uint32_t seed) {
  std::vector<Request> reqs;
  std::mt19937 rng(seed);
  for (auto& p : prompts(m, n, seed)) {
    Request r;
    r.prompt = p;
    r.max_tokens = 4 + static_cast<int64_t>(rng() % 20);
    r.ignore_eos = true;
    reqs.push_back(r);
  }
  return reqs;
}

void check_invariance(models::Model& m) {
  auto reqs = greedy_requests(m, 16, 7);
  // Each one alone.
  std::vector<Collected> alone;
  for (const Request& r : reqs) alone.push_back(run_all(m, {r}, {0})[0]);
  // All 16 together, joining at staggered steps; then with a small prefill chunk (prompts cut
  // over several steps) and a batch of 5 (so later ones wait for a slot).
  std::vector<int> join;
  for (int i = 0; i < 16; ++i) join.push_back((i * 3) % 7);
  for (auto setting : {std::pair{256, 16}, std::pair{7, 16}, std::pair{5, 5}}) {
    // Plain variables, not a structured binding: clang 14 (the ASan build) cannot capture a
    // binding in CAPTURE's lambda.
    const int chunk = setting.first, batch = setting.second;
    CAPTURE(chunk);
    CAPTURE(batch);
    auto together = run_all(m, reqs, join, chunk, batch);
    for (size_t i = 0; i < reqs.size(); ++i) {
      CAPTURE(i);
      CHECK(together[i].finishes == 1);
      CHECK(together[i].tokens == alone[i].tokens);
      CHECK(together[i].text == alone[i].text);
      CHECK(static_cast<int64_t>(together[i].tokens.size()) == reqs[i].max_tokens);
      CHECK(std::string(engine::to_string(together[i].fin.reason)) == "length");
    }
  }
}

}  // namespace

TEST_CASE("batch invariance: greedy tokens alone equal tokens beside 15 others (synthetic MoE, resident and streamed)") {
  auto m = models::Model::load(synth_moe());
  check_invariance(*m);
  auto s = models::Model::load(synth_moe(), streamed(0.3, synth_moe()));
  check_invariance(*s);
  // And streamed equals resident.
  auto reqs = greedy_requests(*m, 4, 11);
  for (const Request& r : reqs) CHECK(run_all(*m, {r}, {0})[0].tokens == run_all(*s, {r}, {0})[0].tokens);
}

TEST_CASE("batch invariance on the reference models") {
  STRATA_REQUIRE_SHARED(shared);
  for (const char* name : {"stories260K-w256-moe8x2-q4_k_m.gguf", "stories260K-w256-q4_0.gguf", "tiny-random-qwen3moe-q8_0.gguf",
                           "stories260K-w256-f32.gguf"}) {
    CAPTURE(name);
    const std::string path = (shared / "models" / name).string();
    auto m = models::Model::load(path);
    check_invariance(*m);
  }
  const std::string path = (shared / "models" / "stories260K-w256-moe8x2-q8_0.gguf").string();
  auto s = models::Model::load(path, streamed(0.3, path));
  check_invariance(*s);
}

TEST_CASE("seeded sampling is reproducible and independent of the batch") {
  auto m = models::Model::load(synth_moe());
  auto reqs = greedy_requests(*m, 6, 3);
  for (size_t i = 0; i < reqs.size(); ++i) {
    reqs[i].sampling.temperature = 0.9f;
    reqs[i].sampling.top_p = 0.95f;
    reqs[i].sampling.seed = 100 + i;
  }
  auto a = run_all(*m, reqs, {0, 0, 0, 0, 0, 0});
  auto b = run_all(*m, reqs, {0, 2, 4, 1, 3, 5}, 3, 3);
  for (size_t i = 0; i < reqs.size(); ++i) CHECK(a[i].tokens == b[i].tokens);
  reqs[0].sampling.seed = 999;
  auto c = run_all(*m, {reqs[0]}, {0});
  CHECK(c[0].tokens != a[0].tokens);
}

TEST_CASE("generate is the engine's single-sequence path: same tokens as a batched request") {
  auto m = models::Model::load(synth_moe());
  models::GenerateOptions g;
  g.n_predict = 12;
  auto r = models::generate(*m, "abc def", g, {});
  Request req;
  req.prompt = r.prompt_ids;
  req.max_tokens = 12;
  auto others = greedy_requests(*m, 3, 5);
  others.insert(others.begin() + 1, req);
  auto out = run_all(*m, others, {0, 0, 0, 0});
  CHECK(out[1].tokens == r.tokens);
  CHECK(out[1].text == r.text);
}

TEST_CASE("stop strings, max_tokens and the context limit end a sequence with the right reason") {
  auto m = models::Model::load(synth_moe());
  Request base = greedy_requests(*m, 1, 9)[0];
  base.max_tokens = 20;
  auto full = run_all(*m, {base}, {0})[0];
  REQUIRE(full.text.size() > 6);
  Request st = base;
  st.stop = {full.text.substr(3, 2)};
  auto stopped = run_all(*m, {st}, {0})[0];
  CHECK(std::string(engine::to_string(stopped.fin.reason)) == "stop");
  CHECK(stopped.text == full.text.substr(0, full.text.find(st.stop[0])));
  // No max_tokens: runs until the context (here 64) is full.
  engine::EngineOptions eo;
  eo.n_ctx = 64;
  engine::Scheduler sched(*m, eo);
  Request open = base;
  open.max_tokens = -1;
  FinishEvent fin;
  sched.admit(1, open, Sink{{}, [&](const FinishEvent& f) { fin = f; }}, engine::now_s());
  while (!sched.idle()) sched.step();
  CHECK(fin.context_full);
  CHECK(fin.prompt_tokens + fin.completion_tokens == 64);
  // A prompt that fills the whole context can never run.
  Request big = base;
  big.prompt.assign(64, 5);
  CHECK(sched.check(big).find("context size is 64") != std::string::npos);
  Request empty;
  CHECK(sched.check(empty).find("empty") != std::string::npos);
}

TEST_CASE("engine thread: many clients, cancel, queue limit, KV budget, stop") {
  auto m = models::Model::load(synth_moe());
  const auto reqs = greedy_requests(*m, 24, 21);
  engine::EngineOptions eo;
  eo.max_batch = 4;
  eo.max_queue = 8;
  engine::Scheduler probe(*m, eo);
  // Room for exactly two sequences of the longest request: the KV budget, not max_batch, binds.
  uint64_t worst = 0;
  for (const Request& r : reqs) worst = std::max(worst, probe.kv_bytes_for(probe.context_for(r)));
  eo.kv_budget = 2 * worst;
  std::mutex mu;
  std::condition_variable cv;
  std::map<engine::RequestId, Collected> got;
  int finished = 0;
  auto sink_for = [&](engine::RequestId* id_slot) {
    Sink s;
    s.on_token = [&, id_slot](const TokenEvent& e) {
      std::lock_guard<std::mutex> g(mu);
      got[*id_slot].tokens.push_back(e.token);
    };
    s.on_finish = [&, id_slot](const FinishEvent& f) {
      std::lock_guard<std::mutex> g(mu);
      got[*id_slot].fin = f;
      ++got[*id_slot].finishes;
      ++finished;
      cv.notify_all();
    };
    return s;
  };
  std::vector<engine::RequestId> ids(reqs.size(), 0);
  int accepted = 0, refused = 0;
  {
    engine::Engine eng(*m, eo);
    std::unique_lock<std::mutex> lk(mu);  // hold sinks until every submit has its id
    for (size_t i = 0; i < reqs.size(); ++i) {
      auto r = eng.submit(reqs[i], sink_for(&ids[i]));
      if (r.accepted) {
        ids[i] = r.id;
        ++accepted;
      } else {
        CHECK(r.http_status == 429);
        CHECK(r.retry_after_s >= 1);
        ++refused;
      }
    }
    lk.unlock();
    CHECK(refused > 0);  // 24 submitted at once against 4 slots + 8 queued
    CHECK(eng.stats().kv_reserved <= eo.kv_budget);
    // Cancel one that was accepted last; it finishes as cancelled (or had already finished).
    engine::RequestId last = 0;
    for (auto id : ids) last = std::max(last, id);
    eng.cancel(last);
    lk.lock();
    cv.wait_for(lk, std::chrono::seconds(60), [&] { return finished == accepted; });
    CHECK(finished == accepted);
    for (const auto& entry : got) {
      const auto id = entry.first;  // not a structured binding: see check_invariance
      CAPTURE(id);
      CHECK(entry.second.finishes == 1);
    }
    CHECK((got[last].fin.reason == engine::FinishReason::Cancelled || got[last].fin.reason == engine::FinishReason::Length));
    lk.unlock();
    // Results equal the single-sequence runs.
    for (size_t i = 0; i < reqs.size(); ++i)
      if (ids[i] && ids[i] != last) CHECK(got[ids[i]].tokens == run_all(*m, {reqs[i]}, {0})[0].tokens);
    auto st = eng.stats();
    CHECK(st.active == 0);
    CHECK(st.queued == 0);
    CHECK(st.kv_reserved == 0);
    // A request that can never fit is refused with 400, not queued.
    Request huge = reqs[0];
    huge.max_tokens = 100000;
    auto r = eng.submit(huge, {});
    CHECK(r.http_status == 400);
    // stop(): a long request is cut at the deadline and still finishes exactly once.
    Request longer = reqs[0];
    longer.max_tokens = -1;  // as long as the KV budget allows
    engine::RequestId lid = 0;
    lk.lock();
    auto lr = eng.submit(longer, sink_for(&lid));
    REQUIRE(lr.accepted);
    lid = lr.id;
    const int before = finished;
    lk.unlock();
    eng.stop(0.05);
    lk.lock();
    CHECK(finished == before + 1);
    CHECK(got[lid].finishes == 1);
    lk.unlock();
    auto after = eng.submit(reqs[1], {});
    CHECK(after.http_status == 503);
  }
}
