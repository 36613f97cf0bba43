// Placement manifests and the Placement map: a manifest reads back as written; a bad one gives an
// error naming the field (or the truncated part); Placement::map splits ranges at stripe
// boundaries exactly as a byte-by-byte map of RAID-0 striping does; read_exact across parts
// gives the original bytes; model_locators names one locator per logical file.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "storage/error.h"
#include "storage/file.h"
#include "storage/placement.h"
#include "tests/storage/read_test_support.h"

namespace fs = std::filesystem;
using strata::storage::Manifest;
using strata::storage::ManifestFile;
using strata::storage::Piece;
using strata::storage::Placement;
using strata::test::ScratchDir;

namespace {

std::vector<uint8_t> random_bytes(uint64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

void write_file(const std::string& path, const uint8_t* data, uint64_t n) {
  auto f = strata::storage::File::create(path);
  if (n) f.write_all(data, n);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

// RAID-0 by hand: stripe k of `data` goes to part k mod n, appended in order. Returns the part
// paths (dirs[j % dirs.size()]/name.part-j).
std::vector<std::string> stripe_by_hand(const std::vector<uint8_t>& data, uint64_t stripe, size_t n,
                                        const std::vector<std::string>& dirs, const std::string& name) {
  std::vector<std::vector<uint8_t>> parts(n);
  for (uint64_t k = 0; k * stripe < data.size(); ++k) {
    const uint64_t take = std::min<uint64_t>(stripe, data.size() - k * stripe);
    auto& p = parts[k % n];
    p.insert(p.end(), data.begin() + k * stripe, data.begin() + k * stripe + take);
  }
  std::vector<std::string> paths;
  for (size_t j = 0; j < n; ++j) {
    paths.push_back((fs::path(dirs[j % dirs.size()]) / (name + ".part-" + std::to_string(j))).string());
    write_file(paths.back(), parts[j].data(), parts[j].size());
  }
  return paths;
}

std::string write_manifest(const std::string& path, std::vector<ManifestFile> files) {
  Manifest m;
  m.files = std::move(files);
  m.write(path);
  return path;
}

// Where logical byte i lives under RAID-0 with stripe s over n parts.
struct Loc {
  uint32_t part;
  uint64_t off;
  bool operator==(const Loc&) const = default;
};
Loc brute_loc(uint64_t i, uint64_t s, uint64_t n) {
  const uint64_t k = i / s;
  return {static_cast<uint32_t>(k % n), (k / n) * s + i % s};
}

// Checks map(offset, length) against the byte-by-byte map: the pieces cover the range in logical
// order, each within one stripe, each starting at the range start or a stripe boundary, and
// every byte lands where brute_loc says.
void check_map(const Placement& p, uint64_t offset, uint64_t length, uint64_t s, uint64_t n) {
  CAPTURE(offset);
  CAPTURE(length);
  const std::vector<Piece> pieces = p.map(offset, length);
  uint64_t at = offset;
  for (const Piece& pc : pieces) {
    REQUIRE(pc.logical_offset == at);
    REQUIRE(pc.length > 0);
    CHECK((pc.logical_offset == offset || pc.logical_offset % s == 0));
    CHECK(pc.logical_offset / s == (pc.logical_offset + pc.length - 1) / s);  // within one stripe
    // Maximal: a piece ends at a stripe boundary or at the end of the range.
    CHECK(((pc.logical_offset + pc.length) % s == 0 || pc.logical_offset + pc.length == offset + length));
    for (uint64_t b = 0; b < pc.length; b += std::max<uint64_t>(1, pc.length / 7)) {
      const Loc want = brute_loc(pc.logical_offset + b, s, n);
      REQUIRE(Loc{pc.part, pc.part_offset + b} == want);
    }
    const Loc last = brute_loc(pc.logical_offset + pc.length - 1, s, n);
    REQUIRE(Loc{pc.part, pc.part_offset + pc.length - 1} == last);
    at += pc.length;
  }
  CHECK(at == offset + length);
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string error_of(const std::string& path) {
  try {
    (void)Manifest::read(path);
  } catch (const strata::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("placement: a manifest reads back as written") {
  ScratchDir dir;
  const std::string path = dir.file("m.strata.json");
  write_manifest(path, {ManifestFile{"a-00001-of-00002.gguf", 5 << 20, 1 << 20, {"/d0/a.s1", "rel/a.s2", "/d2/a.s3"}},
                        ManifestFile{"a-00002-of-00002.gguf", 12345, 0, {"/d1/a2.gguf"}}});
  CHECK(!fs::exists(path + ".tmp"));  // written through a temporary file, renamed
  CHECK(strata::storage::is_manifest(path));
  const Manifest m = Manifest::read(path);
  REQUIRE(m.files.size() == 2);
  CHECK(m.files[0].name == "a-00001-of-00002.gguf");
  CHECK(m.files[0].size == (5u << 20));
  CHECK(m.files[0].stripe_bytes == (1u << 20));
  CHECK(m.files[0].parts == std::vector<std::string>{"/d0/a.s1", "rel/a.s2", "/d2/a.s3"});
  CHECK(m.files[1].name == "a-00002-of-00002.gguf");
  CHECK(m.files[1].size == 12345);
  CHECK(m.files[1].stripe_bytes == 0);
  CHECK(m.files[1].parts == std::vector<std::string>{"/d1/a2.gguf"});

  // A manifest written over an existing one replaces it.
  write_manifest(path, {ManifestFile{"b.gguf", 7, 0, {"b.gguf"}}});
  const Manifest m2 = Manifest::read(path);
  REQUIRE(m2.files.size() == 1);
  CHECK(m2.files[0].name == "b.gguf");

  // A GGUF (or anything not starting with '{') is not a manifest.
  write_text(dir.file("x.gguf"), "GGUF\3\0\0\0");
  CHECK(!strata::storage::is_manifest(dir.file("x.gguf")));
  write_text(dir.file("ws.json"), "  \n\t{\"format\": 1}");
  CHECK(strata::storage::is_manifest(dir.file("ws.json")));
  CHECK(!strata::storage::is_manifest(dir.file("absent.json")));
}

TEST_CASE("placement: a bad manifest gives an error naming the field") {
  ScratchDir dir;
  const std::string path = dir.file("bad.strata.json");
  auto with = [&](const std::string& text) {
    write_text(path, text);
    return error_of(path);
  };
  const std::string head = R"({"format": "strata-placement", "version": 1, )";

  SUBCASE("not JSON") { CHECK(contains(with("{not json"), "not valid JSON")); }
  SUBCASE("wrong format") {
    const std::string e = with(R"({"format": "other", "version": 1, "files": []})");
    CHECK(contains(e, "\"format\""));
    CHECK(contains(e, path));
  }
  SUBCASE("wrong version") { CHECK(contains(with(R"({"format": "strata-placement", "version": 2, "files": []})"), "version")); }
  SUBCASE("missing files") {
    const std::string e = with(R"({"format": "strata-placement", "version": 1})");
    CHECK(contains(e, "\"files\""));
    CHECK(contains(e, path));
  }
  SUBCASE("empty files") { CHECK(contains(with(head + R"("files": []})"), "\"files\"")); }
  SUBCASE("missing size") {
    const std::string e = with(head + R"("files": [{"name": "m.gguf", "stripe_bytes": 0, "parts": ["a"]}]})");
    CHECK(contains(e, "files[0]"));
    CHECK(contains(e, "\"size\""));
  }
  SUBCASE("negative size") {
    CHECK(contains(with(head + R"("files": [{"name": "m.gguf", "size": -5, "parts": ["a"]}]})"), "\"size\""));
  }
  SUBCASE("stripe_bytes not a multiple of 4096") {
    const std::string e = with(head + R"("files": [{"name": "m", "size": 10, "stripe_bytes": 4096, "parts": ["a"]},
                                                    {"name": "n", "size": 10, "stripe_bytes": 1000, "parts": ["a", "b"]}]})");
    CHECK(contains(e, "files[1]"));
    CHECK(contains(e, "\"stripe_bytes\""));
    CHECK(contains(e, "4096"));
  }
  SUBCASE("parts missing") {
    const std::string e = with(head + R"("files": [{"name": "m", "size": 10, "stripe_bytes": 4096}]})");
    CHECK(contains(e, "files[0]"));
    CHECK(contains(e, "\"parts\""));
  }
  SUBCASE("parts empty") {
    CHECK(contains(with(head + R"("files": [{"name": "m", "size": 10, "stripe_bytes": 4096, "parts": []}]})"), "\"parts\""));
  }
  SUBCASE("a part that is not a string") {
    CHECK(contains(with(head + R"("files": [{"name": "m", "size": 10, "stripe_bytes": 4096, "parts": ["a", 3]}]})"), "\"parts\""));
  }
  SUBCASE("two parts with stripe 0") {
    const std::string e = with(head + R"("files": [{"name": "m", "size": 10, "stripe_bytes": 0, "parts": ["a", "b"]}]})");
    CHECK(contains(e, "files[0]"));
    CHECK(contains(e, "\"stripe_bytes\""));
    CHECK(contains(e, "2 parts"));
  }
  SUBCASE("two parts without stripe_bytes") {
    CHECK(contains(with(head + R"("files": [{"name": "m", "size": 10, "parts": ["a", "b"]}]})"), "\"stripe_bytes\""));
  }
}

TEST_CASE("placement: a truncated or missing part is an error naming it") {
  ScratchDir dir;
  const auto data = random_bytes((1 << 20) + 5000, 7);
  const auto parts = stripe_by_hand(data, 64 << 10, 3, {dir.file("")}, "t");
  const std::string man = write_manifest(dir.file("t.strata.json"), {ManifestFile{"t.gguf", data.size(), 64 << 10, parts}});
  CHECK_NOTHROW(Placement::open(man));

  // Part 2 loses its last byte: it no longer holds its share.
  fs::resize_file(parts[1], fs::file_size(parts[1]) - 1);
  try {
    (void)Placement::open(man);
    FAIL("a truncated part was accepted");
  } catch (const strata::Error& e) {
    const std::string what = e.what();
    CHECK(contains(what, "truncated"));
    CHECK(contains(what, parts[1]));
    CHECK(contains(what, "part 2 of 3"));
  }
  // Gone altogether: the error names the path.
  fs::remove(parts[1]);
  CHECK_THROWS_WITH_AS(Placement::open(man), doctest::Contains(parts[1].c_str()), strata::Error);
}

TEST_CASE("placement: map splits ranges at stripe boundaries as RAID-0 does") {
  ScratchDir dir;
  std::mt19937_64 rng(3);
  for (uint64_t stripe : {uint64_t(4096), uint64_t(64 << 10)}) {
    for (size_t n : {size_t(1), size_t(2), size_t(3)}) {
      CAPTURE(stripe);
      CAPTURE(n);
      // Parts only need the right sizes for map(); their bytes are checked in the next case.
      const uint64_t size = 7 * stripe * n + stripe / 2 + 123;  // an uneven tail
      const std::vector<uint8_t> data(size, 0);
      const auto parts = stripe_by_hand(data, stripe, n, {dir.file("")}, fmt::format("m{}-{}", stripe, n));
      const std::string man = write_manifest(dir.file(fmt::format("m{}-{}.json", stripe, n)),
                                             {ManifestFile{"m.gguf", size, stripe, parts}});
      const Placement p = Placement::open(man);
      CHECK(p.size() == size);
      CHECK(p.parts().size() == n);
      CHECK(p.striped() == (n > 1));
      // part_share: what each part holds, equal to the part files written by hand.
      uint64_t sum = 0;
      for (uint32_t j = 0; j < n; ++j) {
        CHECK(p.part_share(j) == fs::file_size(parts[j]));
        sum += p.part_share(j);
      }
      CHECK(sum == size);
      if (n == 1) {
        const auto pcs = p.map(stripe + 5, 3 * stripe);
        REQUIRE(pcs.size() == 1);
        CHECK(pcs[0].part == 0);
        CHECK(pcs[0].part_offset == stripe + 5);
        CHECK(pcs[0].length == 3 * stripe);
        continue;
      }
      CHECK(p.map(100, 0).empty());
      // Hand-picked: whole stripes, a range ending exactly on a boundary, one crossing many.
      check_map(p, 0, stripe, stripe, n);
      check_map(p, 0, size, stripe, n);
      check_map(p, stripe - 1, 2, stripe, n);
      check_map(p, 3 * stripe, 2 * stripe, stripe, n);
      check_map(p, 5, 4 * stripe + 17, stripe, n);
      {
        const auto pcs = p.map(stripe - 1, 2);  // one byte on each side of the first boundary
        REQUIRE(pcs.size() == 2);
        CHECK(pcs[0].part == 0);
        CHECK(pcs[0].part_offset == stripe - 1);
        CHECK(pcs[1].part == 1);
        CHECK(pcs[1].part_offset == 0);
        const auto row = p.map(n * stripe, stripe);  // stripe n: back on part 0, one stripe in
        REQUIRE(row.size() == 1);
        CHECK(row[0].part == 0);
        CHECK(row[0].part_offset == stripe);
      }
      for (int i = 0; i < 200; ++i) {
        const uint64_t off = rng() % size;
        const uint64_t len = 1 + rng() % std::min<uint64_t>(size - off, 5 * stripe);
        check_map(p, off, len, stripe, n);
      }
    }
  }
}

TEST_CASE("placement: read_exact across parts gives the original bytes") {
  ScratchDir dir;
  ScratchDir dir2, dir3;  // the parts spread over three folders
  std::mt19937_64 rng(11);
  int layout = 0;
  for (uint64_t stripe : {uint64_t(4096), uint64_t(64 << 10)}) {
    for (size_t n : {size_t(1), size_t(2), size_t(3)}) {
      CAPTURE(stripe);
      CAPTURE(n);
      const uint64_t size = (1 << 20) + rng() % (2 << 20);  // 1-3 MB, rarely a multiple of the stripe
      CAPTURE(size);
      const auto data = random_bytes(size, 100 + layout);
      const std::string name = fmt::format("r{}", layout++);
      const auto parts = stripe_by_hand(data, stripe, n, {dir.file(""), dir2.file(""), dir3.file("")}, name);
      // The first part by a path relative to the manifest's folder, the others absolute.
      std::vector<std::string> written = parts;
      written[0] = fs::path(parts[0]).filename().string();
      const std::string man = write_manifest(dir.file(name + ".strata.json"), {ManifestFile{name + ".gguf", size, stripe, written}});
      const Placement p = Placement::open(man);
      CHECK(p.parts()[0] == parts[0]);  // resolved against the manifest's folder
      std::vector<uint8_t> buf;
      auto check_range = [&](uint64_t off, uint64_t len) {
        buf.assign(len, 0xcd);
        p.read_exact(buf.data(), len, off);
        REQUIRE_MESSAGE(std::memcmp(buf.data(), data.data() + off, len) == 0, "range ", off, "+", len);
      };
      check_range(0, size);
      check_range(size - 1, 1);
      check_range(stripe - 3, 6);
      for (int i = 0; i < 60; ++i) {
        const uint64_t off = rng() % size;
        check_range(off, 1 + rng() % std::min<uint64_t>(size - off, 300000));
      }
      // Past the end: an error naming the locator.
      buf.resize(16);
      CHECK_THROWS_WITH_AS(p.read_exact(buf.data(), 16, size - 8), doctest::Contains(man.c_str()), strata::Error);
      CHECK_THROWS_AS(p.read_exact(buf.data(), 1, size + 4096), strata::Error);
    }
  }
}

TEST_CASE("placement: model_locators and MANIFEST#i") {
  ScratchDir dir;
  const auto a = random_bytes(300000, 1), b = random_bytes(70000, 2), c = random_bytes(9000, 3);
  write_file(dir.file("plain.gguf"), a.data(), a.size());
  CHECK(strata::storage::model_locators(dir.file("plain.gguf")) == std::vector<std::string>{dir.file("plain.gguf")});
  {
    const Placement p = Placement::open(dir.file("plain.gguf"));
    CHECK(p.size() == a.size());
    CHECK(!p.striped());
    CHECK(p.parts() == std::vector<std::string>{dir.file("plain.gguf")});
  }

  // One file: the manifest alone.
  const auto pa = stripe_by_hand(a, 4096, 2, {dir.file("")}, "a");
  const std::string one = write_manifest(dir.file("one.strata.json"), {ManifestFile{"a.gguf", a.size(), 4096, pa}});
  CHECK(strata::storage::model_locators(one) == std::vector<std::string>{one});

  // Three files (a split model): M, M#1, M#2, each opening its own logical file.
  write_file(dir.file("b.gguf"), b.data(), b.size());
  const auto pc = stripe_by_hand(c, 4096, 3, {dir.file("")}, "c");
  const std::string three = write_manifest(dir.file("three.strata.json"),
                                           {ManifestFile{"a.gguf", a.size(), 4096, pa}, ManifestFile{"b.gguf", b.size(), 0, {"b.gguf"}},
                                            ManifestFile{"c.gguf", c.size(), 4096, pc}});
  const auto locs = strata::storage::model_locators(three);
  REQUIRE(locs == std::vector<std::string>{three, three + "#1", three + "#2"});
  const std::vector<const std::vector<uint8_t>*> want{&a, &b, &c};
  for (size_t i = 0; i < locs.size(); ++i) {
    CAPTURE(i);
    const Placement p = Placement::open(locs[i]);
    CHECK(p.locator() == locs[i]);
    REQUIRE(p.size() == want[i]->size());
    std::vector<uint8_t> buf(p.size());
    p.read_exact(buf.data(), buf.size(), 0);
    CHECK(buf == *want[i]);
  }
  CHECK(Placement::open(locs[1]).parts() == std::vector<std::string>{dir.file("b.gguf")});
  CHECK_THROWS_WITH_AS(Placement::open(three + "#3"), doctest::Contains("no file 3"), strata::Error);
  // '#' in a plain file's name is part of its name.
  write_file(dir.file("x#1"), c.data(), c.size());
  CHECK(Placement::open(dir.file("x#1")).size() == c.size());
}
