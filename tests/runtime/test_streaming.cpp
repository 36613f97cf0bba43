// Streaming weights from disk under a budget changes nothing in the output: every reference
// model gives the same tokens and bit-identical top logits at 30% of its weight bytes as when
// resident, with each backend. Faults (EIO, short reads, a file shortened after open) give a
// clear error for that request, never a hang or a crash; a budget below the minimum is refused
// at start with the minimum stated.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "models/generate.h"
#include "models/model.h"
#include "runtime/streaming_provider.h"
#include "storage/error.h"
#include "storage/fault_backend.h"
#include "tests/shared_data.h"
#include "tests/storage/read_test_support.h"

namespace fs = std::filesystem;
using strata::models::GenerateOptions;
using strata::models::GenerateResult;
using strata::models::LoadOptions;
using strata::models::Model;
using strata::runtime::StreamingOptions;

namespace {

uint64_t weight_bytes(const Model& m) {
  uint64_t n = 0;
  for (const auto& t : m.file().tensors()) n += t.nbytes;
  return n;
}

LoadOptions streaming(StreamingOptions so) {
  LoadOptions o;
  o.provider = [so](const std::vector<std::string>& paths) { return strata::runtime::make_streaming_provider(paths, so); };
  return o;
}

// A 4 MiB budget over backend `io`, wrapped in the fault-injecting backend with `plan`.
LoadOptions faulty(const char* io, strata::storage::FaultPlan plan) {
  StreamingOptions so;
  so.io = io;
  so.memory_budget = 4 << 20;
  so.wrap_backend = [plan](auto inner) { return strata::storage::make_fault_backend(std::move(inner), plan); };
  return streaming(so);
}

GenerateResult greedy(Model& m, int n = 24) {
  GenerateOptions g;
  g.n_predict = n;
  return strata::models::generate(m, "Once upon a time, in a", g, {});
}

std::vector<fs::path> shared_models(const fs::path& shared) {
  std::vector<fs::path> v;
  for (const auto& e : fs::directory_iterator(shared / "models"))
    if (e.path().extension() == ".gguf") v.push_back(e.path());
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

TEST_CASE("every reference model streams at 30% of its weights with the resident run's tokens and logits") {
  STRATA_REQUIRE_SHARED(shared);
  const auto models = shared_models(shared);
  REQUIRE(models.size() >= 13);
  for (const fs::path& path : models) {
    CAPTURE(path.filename().string());
    auto resident = Model::load(path.string());
    const GenerateResult want = greedy(*resident);
    const uint64_t budget = weight_bytes(*resident) * 3 / 10;
    for (const char* io : {"uring", "pread", "mmap"}) {
      CAPTURE(std::string(io));
      StreamingOptions so;
      so.io = io;
      so.memory_budget = budget;
      auto m = Model::load(path.string(), streaming(so));
      const GenerateResult got = greedy(*m);
      CHECK(got.tokens == want.tokens);
      REQUIRE(got.top_logits.size() == want.top_logits.size());
      for (size_t i = 0; i < want.top_logits.size(); ++i) {
        CHECK(got.top_logits[i].first == want.top_logits[i].first);
        CHECK(got.top_logits[i].second == want.top_logits[i].second);  // bit-identical
      }
      const auto st = m->provider().stats();
      CHECK(st.peak_resident_bytes <= budget);
      CHECK(st.evictions > 0);  // the budget really was too small to hold the model
      CHECK(st.bytes_read > weight_bytes(*m) / 2);
    }
    if (resident->hparams().n_expert > 0) {
      // Units capped at 64 KiB: every expert and large matrix streams in row blocks.
      StreamingOptions so;
      so.memory_budget = std::min<uint64_t>(budget, 4 << 20);
      so.max_unit_bytes = 64 << 10;
      auto m = Model::load(path.string(), streaming(so));
      CHECK(m->provider().unit_count() > resident->provider().unit_count() + 8);
      bool split = false;
      for (size_t i = 0; i < m->provider().unit_count(); ++i)
        split |= m->provider().unit(static_cast<strata::runtime::UnitId>(i)).name.find("gate+up rows") != std::string::npos;
      CHECK(split);
      const GenerateResult got = greedy(*m);
      CHECK(got.tokens == want.tokens);
      for (size_t i = 0; i < want.top_logits.size(); ++i) CHECK(got.top_logits[i] == want.top_logits[i]);
    }
  }
}

TEST_CASE("a budget below the minimum is refused at start, stating the minimum") {
  STRATA_REQUIRE_SHARED(shared);
  StreamingOptions so;
  so.memory_budget = 100 << 10;
  const std::string path = (shared / "models" / "stories260K-w256-moe8x2-f32.gguf").string();
  CHECK_THROWS_WITH_AS(Model::load(path, streaming(so)), doctest::Contains("is below the minimum"), strata::Error);
}

TEST_CASE("read faults while streaming give a clear error for that request and no hang") {
  STRATA_REQUIRE_SHARED(shared);
  const std::string path = (shared / "models" / "stories260K-w256-moe8x2-q8_0.gguf").string();
  auto resident = Model::load(path);
  const GenerateResult want = greedy(*resident, 8);
  // The middle of layer 3's expert gate tensor (away from the blocks it shares with its
  // neighbours): reads overlapping it fail, so some of layer 3's experts cannot be loaded.
  const auto* gate = resident->file().find_tensor("blk.3.ffn_gate_exps.weight");
  REQUIRE(gate != nullptr);
  for (const char* io : {"uring", "pread", "mmap"}) {
    CAPTURE(std::string(io));
    SUBCASE("EIO on one tensor's range") {
      strata::storage::FaultPlan plan;
      plan.fail_ranges.push_back({0, gate->offset + gate->nbytes / 4, gate->offset + gate->nbytes / 2});
      auto m = Model::load(path, faulty(io, plan));
      CHECK_THROWS_WITH_AS(greedy(*m, 8), doctest::Contains("blk.3.ffn_exps"), strata::Error);
      // Nothing is left stuck: asking again fails again, just as clearly, instead of hanging.
      CHECK_THROWS_WITH_AS(greedy(*m, 8), doctest::Contains("Input/output error"), strata::Error);
    }
    SUBCASE("short reads reported by the device") {
      strata::storage::FaultPlan plan;
      plan.short_reads = strata::storage::FaultPlan::ShortReads::reported;
      plan.short_every = 7;
      // Pinned units may be the ones cut short: then the load itself fails, just as clearly.
      try {
        auto m = Model::load(path, faulty(io, plan));
        CHECK_THROWS_WITH_AS(greedy(*m, 8), doctest::Contains("file ends before weight unit"), strata::Error);
      } catch (const strata::Error& e) {
        CHECK(std::string(e.what()).find("file ends before weight unit") != std::string::npos);
      }
    }
    if (std::string(io) != "mmap") {
      SUBCASE("short reads resubmitted by the backend give the right answer") {
        strata::storage::FaultPlan plan;
        plan.short_reads = strata::storage::FaultPlan::ShortReads::resubmitted;
        plan.short_every = 3;
        auto m = Model::load(path, faulty(io, plan));
        CHECK(greedy(*m, 8).tokens == want.tokens);
      }
    }
  }
}

TEST_CASE("a model file shortened after it was opened gives a clear error") {
  STRATA_REQUIRE_SHARED(shared);
  strata::test::ScratchDir dir;
  const std::string path = dir.file("model.gguf");
  fs::copy_file(shared / "models" / "stories260K-w256-moe8x2-q8_0.gguf", path);
  for (const char* io : {"uring", "pread", "mmap"}) {
    CAPTURE(std::string(io));
    StreamingOptions so;
    so.io = io;
    so.memory_budget = 4 << 20;
    auto m = Model::load(path, streaming(so));
    fs::resize_file(path, fs::file_size(path) / 2);
    CHECK_THROWS_WITH_AS(greedy(*m, 8), doctest::Contains("file ends before weight unit"), strata::Error);
    m.reset();
    fs::remove(path);
    fs::copy_file(shared / "models" / "stories260K-w256-moe8x2-q8_0.gguf", path);
  }
}
