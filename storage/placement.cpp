#include "storage/placement.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "storage/error.h"

namespace strata::storage {
namespace {

using json = nlohmann::ordered_json;
namespace fs = std::filesystem;

constexpr const char* kFormat = "strata-placement";
constexpr uint64_t kStripeAlign = 4096;  // O_DIRECT reads of a stripe must stay aligned in the part

uint64_t get_u64(const json& o, const char* key, const std::string& where) {
  auto it = o.find(key);
  if (it == o.end()) fail("{}: missing \"{}\"", where, key);
  if (!it->is_number_unsigned()) fail("{}: \"{}\" must be a non-negative integer", where, key);
  return it->get<uint64_t>();
}

// Splits "MANIFEST#i" (only when MANIFEST is an existing manifest: a plain path may contain '#').
std::pair<std::string, size_t> split_locator(const std::string& locator) {
  const size_t hash = locator.rfind('#');
  if (hash != std::string::npos && hash + 1 < locator.size()) {
    const std::string base = locator.substr(0, hash), idx = locator.substr(hash + 1);
    if (std::all_of(idx.begin(), idx.end(), [](char c) { return c >= '0' && c <= '9'; }) && idx.size() < 6 &&
        !fs::exists(locator) && is_manifest(base))
      return {base, std::stoul(idx)};
  }
  return {locator, 0};
}

}  // namespace

Manifest Manifest::read(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("{}: cannot open placement manifest: {}", path, std::strerror(errno));
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    fail("{}: placement manifest is not valid JSON: {}", path, e.what());
  }
  if (!j.is_object()) fail("{}: placement manifest must be a JSON object", path);
  if (j.value("format", "") != kFormat) fail("{}: \"format\" must be \"{}\"", path, kFormat);
  if (get_u64(j, "version", path) != 1) fail("{}: unsupported placement manifest version (expected 1)", path);
  if (!j.contains("files") || !j["files"].is_array() || j["files"].empty())
    fail("{}: \"files\" must be a non-empty array", path);
  Manifest m;
  for (size_t i = 0; i < j["files"].size(); ++i) {
    const json& f = j["files"][i];
    const std::string where = fmt::format("{}: files[{}]", path, i);
    if (!f.is_object()) fail("{} must be an object", where);
    ManifestFile mf;
    mf.name = f.value("name", "");
    mf.size = get_u64(f, "size", where);
    mf.stripe_bytes = f.contains("stripe_bytes") ? get_u64(f, "stripe_bytes", where) : 0;
    if (!f.contains("parts") || !f["parts"].is_array() || f["parts"].empty())
      fail("{}: \"parts\" must be a non-empty array of paths", where);
    for (const json& p : f["parts"]) {
      if (!p.is_string() || p.get<std::string>().empty()) fail("{}: \"parts\" entries must be non-empty strings", where);
      mf.parts.push_back(p.get<std::string>());
    }
    if (mf.stripe_bytes == 0 && mf.parts.size() != 1)
      fail("{}: {} parts but \"stripe_bytes\" is 0 (a whole file has one part)", where, mf.parts.size());
    if (mf.stripe_bytes % kStripeAlign != 0)
      fail("{}: \"stripe_bytes\" {} is not a multiple of {}", where, mf.stripe_bytes, kStripeAlign);
    m.files.push_back(std::move(mf));
  }
  return m;
}

void Manifest::write(const std::string& path) const {
  json j;
  j["format"] = kFormat;
  j["version"] = 1;
  j["files"] = json::array();
  for (const ManifestFile& f : files)
    j["files"].push_back({{"name", f.name}, {"size", f.size}, {"stripe_bytes", f.stripe_bytes}, {"parts", f.parts}});
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) fail("{}: cannot write placement manifest: {}", tmp, std::strerror(errno));
    out << j.dump(2) << "\n";
    out.flush();
    if (!out) fail("{}: writing the placement manifest failed", tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail("{}: cannot rename to {}: {}", tmp, path, std::strerror(errno));
}

bool is_manifest(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  int c;
  do c = std::fgetc(f);
  while (c == ' ' || c == '\n' || c == '\r' || c == '\t');
  std::fclose(f);
  return c == '{';
}

std::vector<std::string> model_locators(const std::string& path) {
  if (!is_manifest(path)) return {path};
  const Manifest m = Manifest::read(path);
  std::vector<std::string> out{path};
  for (size_t i = 1; i < m.files.size(); ++i) out.push_back(fmt::format("{}#{}", path, i));
  return out;
}

Placement Placement::open(const std::string& locator) {
  Placement p;
  p.locator_ = locator;
  auto [base, index] = split_locator(locator);
  if (!is_manifest(base)) {
    p.files_.push_back(File::open_read(base));
    p.parts_.push_back(base);
    p.size_ = p.files_.back().size();
    return p;
  }
  const Manifest m = Manifest::read(base);
  if (index >= m.files.size()) fail("{}: the manifest has {} files, no file {}", locator, m.files.size(), index);
  const ManifestFile& f = m.files[index];
  const fs::path dir = fs::path(base).parent_path();
  p.size_ = f.size;
  p.stripe_ = f.parts.size() > 1 ? f.stripe_bytes : 0;
  for (const std::string& part : f.parts) {
    const fs::path pp(part);
    p.parts_.push_back(pp.is_absolute() || dir.empty() ? part : (dir / pp).string());
    p.files_.push_back(File::open_read(p.parts_.back()));
  }
  for (uint32_t i = 0; i < p.parts_.size(); ++i) {
    const uint64_t have = p.files_[i].size(), need = p.part_share(i);
    if (have < need)
      fail("{}: part {} of {} ({}) holds {} bytes, expected at least {}: truncated or not the placed file", locator,
           i + 1, p.parts_.size(), p.parts_[i], have, need);
  }
  return p;
}

uint64_t stripe_share(uint64_t size, uint64_t stripe, uint64_t parts, uint64_t part) {
  const uint64_t full = size / stripe, tail = size % stripe;
  uint64_t bytes = (full / parts) * stripe;
  if (part < full % parts) bytes += stripe;
  else if (part == full % parts) bytes += tail;
  return bytes;
}

uint64_t Placement::part_share(uint32_t part) const {
  if (!striped()) return part == 0 ? size_ : 0;
  return stripe_share(size_, stripe_, parts_.size(), part);
}

std::vector<Piece> Placement::map(uint64_t offset, uint64_t length) const {
  std::vector<Piece> out;
  if (!striped()) {
    if (length) out.push_back({0, offset, length, offset});
    return out;
  }
  const uint64_t n = parts_.size();
  while (length > 0) {
    const uint64_t k = offset / stripe_, within = offset % stripe_;
    const uint64_t take = std::min(length, stripe_ - within);
    Piece pc{static_cast<uint32_t>(k % n), (k / n) * stripe_ + within, take, offset};
    // Consecutive stripes on one part (a single-part layout cannot reach here) never merge.
    out.push_back(pc);
    offset += take;
    length -= take;
  }
  return out;
}

void Placement::read_exact(void* dst, size_t n, uint64_t offset) const {
  if (offset > size_ || n > size_ - offset)
    fail("{}: unexpected end of file reading {} bytes at offset {}", locator_, n, offset);
  auto* out = static_cast<char*>(dst);
  for (const Piece& pc : map(offset, n)) files_[pc.part].read_exact(out + (pc.logical_offset - offset), pc.length, pc.part_offset);
}

}  // namespace strata::storage
