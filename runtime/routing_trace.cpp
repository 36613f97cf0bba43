#include "runtime/routing_trace.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "storage/error.h"

namespace strata::runtime {
namespace {

constexpr const char* kFormat = "strata-routing-trace";
constexpr int64_t kVersion = 1;
constexpr const char* kHeaderExample =
    R"({"format":"strata-routing-trace","version":1,"n_layer":8,"n_expert":64,"n_expert_used":4})";

// The trace being read: names the file and line in every complaint.
struct Reader {
  const std::string& path;
  size_t line = 0;

  template <typename... Args>
  [[noreturn]] void bad(fmt::format_string<Args...> f, Args&&... args) const {
    fail("{}:{}: {}", path, line, fmt::format(f, std::forward<Args>(args)...));
  }

  nlohmann::json object(const std::string& text) const {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      bad("not JSON ({}); a routing trace is one JSON object per line", e.what());
    }
    if (!j.is_object()) bad("expected a JSON object, got {}", j.type_name());
    return j;
  }

  int64_t integer(const nlohmann::json& j, const char* key, int64_t lo, int64_t hi) const {
    const auto it = j.find(key);
    if (it == j.end()) bad("'{}' is missing", key);
    if (!it->is_number_integer()) bad("'{}' must be a whole number, got {}", key, it->dump());
    const int64_t v = it->get<int64_t>();
    if (v < lo || v > hi) bad("'{}' = {} is out of range (expected {} to {})", key, v, lo, hi);
    return v;
  }
};

RoutingTraceHeader parse_header(const Reader& r, const nlohmann::json& j) {
  const auto format = j.find("format");
  if (format == j.end() || !format->is_string() || format->get<std::string>() != kFormat)
    r.bad("not a routing trace: the first line must be the header, like {}", kHeaderExample);
  const int64_t version = r.integer(j, "version", 0, INT64_MAX);
  if (version != kVersion) r.bad("trace version {} is not one this strata reads (expected {})", version, kVersion);
  RoutingTraceHeader h;
  h.n_layer = r.integer(j, "n_layer", 1, 1 << 16);
  h.n_expert = r.integer(j, "n_expert", 1, 1 << 16);
  h.n_expert_used = r.integer(j, "n_expert_used", 1, h.n_expert);
  return h;
}

RoutingRecord parse_record(const Reader& r, const nlohmann::json& j, const RoutingTraceHeader& h) {
  RoutingRecord rec;
  rec.step = r.integer(j, "step", 0, INT64_MAX);
  rec.layer = r.integer(j, "layer", 0, h.n_layer - 1);
  const auto tokens = j.find("tokens");
  if (tokens == j.end() || !tokens->is_array() || tokens->empty())
    r.bad("'tokens' must be a non-empty list with one list of experts per token");
  rec.n_tokens = static_cast<int64_t>(tokens->size());
  rec.experts.reserve(tokens->size() * static_cast<size_t>(h.n_expert_used));
  for (size_t t = 0; t < tokens->size(); ++t) {
    const nlohmann::json& list = (*tokens)[t];
    if (!list.is_array() || static_cast<int64_t>(list.size()) != h.n_expert_used)
      r.bad("token {} of 'tokens' must list n_expert_used = {} experts, got {}", t, h.n_expert_used, list.dump());
    const size_t first = rec.experts.size();
    for (const nlohmann::json& e : list) {
      if (!e.is_number_integer() || e.get<int64_t>() < 0 || e.get<int64_t>() >= h.n_expert)
        r.bad("token {}: expert {} is not a whole number from 0 to n_expert - 1 = {}", t, e.dump(), h.n_expert - 1);
      const auto id = static_cast<int32_t>(e.get<int64_t>());
      for (size_t k = first; k < rec.experts.size(); ++k)
        if (rec.experts[k] == id) r.bad("token {} lists expert {} twice (a router picks distinct experts)", t, id);
      rec.experts.push_back(id);
    }
  }
  return rec;
}

}  // namespace

RoutingTrace read_routing_trace(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("{}: cannot open the routing trace: {}", path, std::strerror(errno));
  RoutingTrace trace;
  Reader r{path};
  bool have_header = false;
  std::string text;
  while (std::getline(in, text)) {
    ++r.line;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank lines mean nothing
    const nlohmann::json j = r.object(text);
    if (!have_header) {
      trace.header = parse_header(r, j);
      have_header = true;
      continue;
    }
    RoutingRecord rec = parse_record(r, j, trace.header);
    if (!trace.records.empty()) {
      const RoutingRecord& prev = trace.records.back();
      if (rec.step < prev.step)
        r.bad("step {} comes after step {}: steps must not go backwards", rec.step, prev.step);
      if (rec.step == prev.step && rec.layer <= prev.layer)
        r.bad("layer {} of step {} comes after layer {}: layers ascend within a step", rec.layer, rec.step, prev.layer);
    }
    trace.records.push_back(std::move(rec));
  }
  if (in.bad()) fail("{}: reading the routing trace failed: {}", path, std::strerror(errno));
  if (!have_header) fail("{}: empty; a routing trace starts with a header line like {}", path, kHeaderExample);
  return trace;
}

RoutingTraceWriter::RoutingTraceWriter(const std::string& path, const RoutingTraceHeader& h) : path_(path) {
  file_ = std::fopen(path.c_str(), "w");
  if (!file_) fail("{}: cannot create the routing trace (--trace-routing): {}", path, std::strerror(errno));
  const std::string header =
      fmt::format(R"({{"format":"{}","version":{},"n_layer":{},"n_expert":{},"n_expert_used":{}}})"
                  "\n",
                  kFormat, kVersion, h.n_layer, h.n_expert, h.n_expert_used);
  failed_ = std::fwrite(header.data(), 1, header.size(), file_) != header.size();
}

RoutingTraceWriter::~RoutingTraceWriter() {
  if (file_) std::fclose(file_);
}

void RoutingTraceWriter::record(int64_t layer, int64_t n_tokens, int64_t n_used, const int32_t* experts) {
  if (!file_) return;
  if (layer <= last_layer_) ++step_;
  last_layer_ = layer;
  line_.clear();
  fmt::format_to(std::back_inserter(line_), R"({{"step":{},"layer":{},"tokens":[)", step_, layer);
  for (int64_t t = 0; t < n_tokens; ++t) {
    line_ += t ? ",[" : "[";
    for (int64_t k = 0; k < n_used; ++k)
      fmt::format_to(std::back_inserter(line_), "{}{}", k ? "," : "", experts[t * n_used + k]);
    line_ += ']';
  }
  line_ += "]}\n";
  if (std::fwrite(line_.data(), 1, line_.size(), file_) != line_.size()) failed_ = true;
}

void RoutingTraceWriter::close() {
  if (!file_) return;
  const bool flushed = std::fflush(file_) == 0;
  const int err = errno;
  const bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (failed_ || !flushed || !closed)
    fail("{}: writing the routing trace (--trace-routing) failed: {}", path_, std::strerror(err ? err : EIO));
}

}  // namespace strata::runtime
