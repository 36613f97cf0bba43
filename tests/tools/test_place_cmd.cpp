// `strata place` end to end: a synthesized MoE striped over three folders (64 KiB stripes) runs
// from its manifest with exactly the GGUF's output, resident and streamed; a split model placed
// with --whole-parts (each part whole, part i in folder i) and striped does too, as does a
// manifest placed again; bad input (a stripe that is no multiple of 4 KiB, a missing folder, a
// target that exists without --force, a target that is one of the source's own files) is
// refused naming the flag or the path.
#include <doctest/doctest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/gguf/gguf.h"
#include "models/gguf/gguf_writer.h"
#include "storage/error.h"
#include "storage/file.h"
#include "storage/placement.h"
#include "tests/storage/read_test_support.h"
#include "tests/tools/run_strata.h"

namespace fs = std::filesystem;
using namespace strata;
using nlohmann::json;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string q(const std::string& s) { return "\"" + s + "\""; }

// Greedy generation's text (stdout only), as `strata run` prints it.
std::string run_text(const std::string& model, const std::string& extra = "") {
  const test::RunResult r =
      test::run_strata(fmt::format("run -m {} -p \"Once upon a time\" -n 16 --temp 0 -t 2 {}", q(model), extra), true);
  REQUIRE_MESSAGE(r.status == 0, model, " ", extra, ": ", test::run_strata(fmt::format("run -m {} -p x -n 1 {}", q(model), extra)).output);
  return r.output;
}

// The token ids and the top logits at the last prompt position (full precision), from --json.
std::string run_tokens_logits(const std::string& model, const std::string& extra = "") {
  const test::RunResult r = test::run_strata(
      fmt::format("run -m {} -p \"Once upon a time\" -n 16 --temp 0 -t 2 --json {}", q(model), extra), true);
  REQUIRE_MESSAGE(r.status == 0, r.output);
  const json j = json::parse(r.output);
  return j.at("token_ids").dump() + " " + j.at("top_logits").dump();
}

// Writes `src` again as a split model of two parts (tensors halved), as llama.cpp's gguf-split
// does; returns the first part's path.
std::string split_in_two(const std::string& src, const std::string& prefix) {
  const gguf::GGUFFile in = gguf::GGUFFile::open(src);
  const auto& ts = in.tensors();
  const size_t half = ts.size() / 2;
  const storage::File f = storage::File::open_read(src);
  std::string first;
  for (uint16_t part = 0; part < 2; ++part) {
    gguf::GGUFWriter w(static_cast<uint32_t>(in.alignment()));
    if (part == 0)
      for (const auto& [k, v] : in.metadata())
        if (!k.starts_with("split.")) w.add_value(k, v);
    w.add_u16("split.no", part);
    w.add_u16("split.count", 2);
    w.add_i32("split.tensors.count", static_cast<int32_t>(ts.size()));
    const size_t begin = part == 0 ? 0 : half, end = part == 0 ? half : ts.size();
    for (size_t i = begin; i < end; ++i) w.add_tensor(ts[i].name, ts[i].shape, ts[i].type);
    const std::string path = fmt::format("{}-{:05d}-of-00002.gguf", prefix, part + 1);
    gguf::WriteOptions wo;
    wo.parallel_fill = false;
    w.write(
        path,
        [&](size_t t, uint64_t off, std::span<uint8_t> dst) { f.read_exact(dst.data(), dst.size(), ts[begin + t].offset + off); },
        wo);
    if (part == 0) first = path;
  }
  return first;
}

}  // namespace

TEST_CASE("strata place: a striped model runs from its manifest with the GGUF's output") {
  if (!fs::exists(test::strata_binary())) {
    MESSAGE("skipped: the strata binary is not built (", test::strata_binary(), ")");
    return;
  }
  test::ScratchDir root, d0, d1, d2;
  const std::string model = root.file("moe.gguf");
  test::RunResult r = test::run_strata(fmt::format(
      "synth -o {} --arch mixtral --layers 3 --dim 128 --heads 4 --kv-heads 2 --experts 16 --used 2 --ffn 128 "
      "--vocab 300 --type q8_0 -t 2",
      q(model)));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  const uint64_t size = fs::file_size(model);
  const std::string dirs = fmt::format("{},{},{}", d0.file(""), d1.file(""), d2.file(""));

  r = test::run_strata(fmt::format("place -m {} --to {} --stripe 64K", q(model), q(dirs)));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  const std::string manifest = d0.file("moe.strata.json");  // the default: DIR1/<model>.strata.json
  CHECK(contains(r.output, "manifest: "));
  CHECK(contains(r.output, "moe.strata.json"));
  REQUIRE(fs::exists(manifest));
  {
    const storage::Manifest m = storage::Manifest::read(manifest);
    REQUIRE(m.files.size() == 1);
    CHECK(m.files[0].name == "moe.gguf");
    CHECK(m.files[0].size == size);
    CHECK(m.files[0].stripe_bytes == 65536);
    REQUIRE(m.files[0].parts.size() == 3);
    uint64_t total = 0;
    for (size_t j = 0; j < 3; ++j) {
      const std::string dir = (j == 0 ? d0 : j == 1 ? d1 : d2).file("");
      CHECK(fs::path(m.files[0].parts[j]).parent_path() == fs::path(dir).parent_path());
      total += fs::file_size(m.files[0].parts[j]);
    }
    CHECK(total == size);  // the parts hold the model's bytes once, nothing more
    // Byte for byte the model.
    const storage::Placement p = storage::Placement::open(manifest);
    std::vector<uint8_t> a(size), b(size);
    p.read_exact(a.data(), size, 0);
    storage::File::open_read(model).read_exact(b.data(), size, 0);
    CHECK(a == b);
  }

  const std::string want = run_text(model);
  CHECK(contains(want, "Once upon a time"));
  CHECK(run_text(manifest) == want);
  CHECK(run_text(model, "--memory-budget 1M") == want);
  CHECK(run_text(manifest, "--memory-budget 1M") == want);
  CHECK(run_text(manifest, "--memory-budget 1M --io pread") == want);
  // Tokens and the logits (full precision) too.
  const std::string want_logits = run_tokens_logits(model);
  CHECK(run_tokens_logits(manifest) == want_logits);
  CHECK(run_tokens_logits(manifest, "--memory-budget 1M") == want_logits);

  SUBCASE("bad input is refused, naming the flag or the path") {
    r = test::run_strata(fmt::format("place -m {} --to {} --stripe 1000 -o {}", q(model), q(dirs), q(root.file("x.json"))));
    CHECK(r.status != 0);
    CHECK(contains(r.output, "--stripe"));
    CHECK(contains(r.output, "1000"));
    CHECK(!fs::exists(root.file("x.json")));

    const std::string missing = root.file("no-such-drive");
    r = test::run_strata(fmt::format("place -m {} --to {},{} -o {}", q(model), q(d1.file("")), q(missing), q(root.file("x.json"))));
    CHECK(r.status != 0);
    CHECK(contains(r.output, missing));
    CHECK(!fs::exists(root.file("x.json")));

    // The manifest exists: refused before anything is written.
    const auto before = fs::last_write_time(manifest);
    r = test::run_strata(fmt::format("place -m {} --to {} --stripe 64K", q(model), q(dirs)));
    CHECK(r.status != 0);
    CHECK(contains(r.output, manifest));
    CHECK(contains(r.output, "--force"));
    CHECK(fs::last_write_time(manifest) == before);
    // A new manifest, but the parts exist.
    r = test::run_strata(fmt::format("place -m {} --to {} --stripe 64K -o {}", q(model), q(dirs), q(root.file("x.json"))));
    CHECK(r.status != 0);
    CHECK(contains(r.output, "moe.gguf.stripe-1-of-3"));
    CHECK(contains(r.output, "--force"));
    // --force overwrites (with another stripe size): still the same model.
    r = test::run_strata(fmt::format("place -m {} --to {} --stripe 4K --force", q(model), q(dirs)));
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK(storage::Manifest::read(manifest).files[0].stripe_bytes == 4096);
    CHECK(run_text(manifest, "--memory-budget 1M") == want);

    r = test::run_strata(fmt::format("place -m {} --to {}", q(root.file("absent.gguf")), q(dirs)));
    CHECK(r.status != 0);
    CHECK(contains(r.output, "absent.gguf"));
  }

  SUBCASE("a placed model placed again (the source a manifest)") {
    test::ScratchDir e0, e1;
    const std::string again = root.file("again.strata.json");
    r = test::run_strata(fmt::format("place -m {} --to {},{} --stripe 128K -o {}", q(manifest), q(e0.file("")), q(e1.file("")), q(again)));
    REQUIRE_MESSAGE(r.status == 0, r.output);
    const storage::Manifest m = storage::Manifest::read(again);
    REQUIRE(m.files.size() == 1);
    CHECK(m.files[0].name == "moe.gguf");
    CHECK(m.files[0].parts.size() == 2);
    CHECK(run_text(again) == want);
    CHECK(run_text(again, "--memory-budget 1M") == want);
  }

  SUBCASE("placing a model onto its own files is refused, even with --force, and leaves it intact") {
    // The placed model again onto its own drives: its parts would be the targets.
    r = test::run_strata(fmt::format("place -m {} --to {} --stripe 64K --force -o {}", q(manifest), q(dirs), q(root.file("y.json"))));
    CHECK(r.status != 0);
    CHECK(contains(r.output, "moe.gguf.stripe-1-of-3"));
    CHECK(contains(r.output, "is a file of the model being placed"));
    CHECK(!fs::exists(root.file("y.json")));
    CHECK(run_text(manifest) == want);
    // A GGUF placed whole into its own folder.
    r = test::run_strata(fmt::format("place -m {} --to {} --whole-parts --force -o {}", q(model), q(root.file("")), q(root.file("y.json"))));
    CHECK(r.status != 0);
    CHECK(contains(r.output, "is a file of the model being placed"));
    CHECK(fs::file_size(model) == size);
    CHECK(run_text(model) == want);
  }

  SUBCASE("a split model: whole parts on their own drives, or every part striped") {
    const std::string split = split_in_two(model, root.file("sp"));
    {
      const gguf::GGUFFile g = gguf::GGUFFile::open(split);
      REQUIRE(g.paths().size() == 2);
    }
    CHECK(run_text(split) == want);

    test::ScratchDir w0, w1, w2;
    const std::string whole = root.file("whole.strata.json");
    r = test::run_strata(fmt::format("place -m {} --to {},{},{} --whole-parts -o {}", q(split), q(w0.file("")), q(w1.file("")),
                                     q(w2.file("")), q(whole)));
    REQUIRE_MESSAGE(r.status == 0, r.output);
    const storage::Manifest m = storage::Manifest::read(whole);
    REQUIRE(m.files.size() == 2);
    CHECK(m.files[0].name == "sp-00001-of-00002.gguf");
    CHECK(m.files[1].name == "sp-00002-of-00002.gguf");
    for (size_t i = 0; i < 2; ++i) {
      CAPTURE(i);
      CHECK(m.files[i].stripe_bytes == 0);
      REQUIRE(m.files[i].parts.size() == 1);
      CHECK(fs::path(m.files[i].parts[0]).parent_path() == fs::path((i == 0 ? w0 : w1).file("")).parent_path());
      CHECK(m.files[i].size == fs::file_size(fmt::format("{}-{:05d}-of-00002.gguf", root.file("sp"), i + 1)));
    }
    CHECK(fs::is_empty(w2.file("")));  // two parts, three drives: the third gets nothing
    CHECK(storage::model_locators(whole) == std::vector<std::string>{whole, whole + "#1"});
    CHECK(run_text(whole) == want);
    CHECK(run_text(whole, "--memory-budget 1M") == want);
    CHECK(run_tokens_logits(whole, "--memory-budget 1M") == want_logits);

    test::ScratchDir s0, s1, s2;
    const std::string striped = root.file("striped.strata.json");
    r = test::run_strata(fmt::format("place -m {} --to {},{},{} --stripe 64K -o {}", q(split), q(s0.file("")), q(s1.file("")),
                                     q(s2.file("")), q(striped)));
    REQUIRE_MESSAGE(r.status == 0, r.output);
    const storage::Manifest ms = storage::Manifest::read(striped);
    REQUIRE(ms.files.size() == 2);
    for (const auto& f : ms.files) {
      CHECK(f.stripe_bytes == 65536);
      CHECK(f.parts.size() == 3);
    }
    CHECK(run_text(striped) == want);
    CHECK(run_text(striped, "--memory-budget 1M") == want);
  }
}
