// `strata place`: lays a model out over several drives and writes the placement manifest that
// `run`, `bench`, `serve`, `batch` (and `info`, `plan`) take for -m as if it were the GGUF.
//   striped (default): every logical file RAID-0 over all drives, stripe k on drive k mod N;
//   --whole-parts:     a split model's parts whole, part i on drive i mod N.
// The source may itself be a manifest (re-placing a placed model).
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "models/gguf/gguf.h"
#include "storage/aligned_buffer.h"
#include "storage/error.h"
#include "storage/file.h"
#include "storage/placement.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "tools/progress.h"
#include "tools/units.h"

namespace strata::tools {
namespace {

namespace fs = std::filesystem;

struct PlaceArgs {
  std::string model, output, stripe = "1M";
  std::vector<std::string> to;
  bool whole_parts = false, force = false;
};

// "m-00001-of-00003.gguf" and "m.gguf" both give "m".
std::string model_stem(const std::string& name) {
  std::string s = fs::path(name).filename().string();
  if (s.ends_with(".gguf")) s.resize(s.size() - 5);
  if (s.size() > 15 && s.compare(s.size() - 15, 4, "-000") == 0 && s.find("-of-", s.size() - 10) != std::string::npos)
    s.resize(s.size() - 15);
  if (s.ends_with(".strata.json")) s.resize(s.size() - 12);
  return s;
}

std::string logical_name(const std::string& locator, size_t i, size_t n, const std::string& stem) {
  if (!storage::is_manifest(locator.substr(0, locator.rfind('#')))) return fs::path(locator).filename().string();
  return n == 1 ? stem + ".gguf" : fmt::format("{}-{:05d}-of-{:05d}.gguf", stem, i + 1, n);
}

void check_room(const std::string& dir, uint64_t need) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) return;
  const uint64_t free_bytes = uint64_t(st.f_bavail) * st.f_frsize;
  if (free_bytes < need)
    fail("--to {}: {} free, {} needed for its share of the model", dir, format_bytes(double(free_bytes)), format_bytes(double(need)));
}

storage::File create_part(const std::string& path, bool force) {
  if (!force && fs::exists(path)) fail("{}: already exists (--force overwrites)", path);
  return storage::File::create(path);
}

void finish_part(storage::File& f) {
  if (::fsync(f.fd()) != 0) fail("{}: fsync failed", f.path());
}

int run(const PlaceArgs& a) {
  if (a.to.empty()) fail("--to: give at least one directory");
  for (const std::string& d : a.to)
    if (!fs::is_directory(d)) fail("--to {}: not a directory", d);
  const uint64_t stripe = parse_size(a.stripe, "--stripe");
  if (stripe < 4096 || stripe % 4096 != 0) fail("--stripe {}: must be a multiple of 4 KiB (O_DIRECT reads stay aligned)", a.stripe);
  const gguf::GGUFFile model = gguf::GGUFFile::open(a.model);  // checks it is a model
  const std::vector<std::string>& sources = model.paths();
  const std::string stem = model_stem(a.model);
  const size_t n = a.to.size();
  if (a.whole_parts && sources.size() == 1 && n > 1)
    spdlog::warn("--whole-parts with a one-file model puts it whole on {}", a.to[0]);
  const std::string manifest_path = a.output.empty() ? (fs::path(a.to[0]) / (stem + ".strata.json")).string() : a.output;
  if (!a.force && fs::exists(manifest_path)) fail("{}: already exists (--force overwrites)", manifest_path);

  std::vector<storage::Placement> in;
  uint64_t total = 0;
  for (const std::string& s : sources) {
    in.push_back(storage::Placement::open(s));
    total += in.back().size();
  }
  // Every part to write, per logical file, known before anything is written.
  std::vector<std::string> names;
  std::vector<std::vector<std::string>> targets(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    names.push_back(logical_name(sources[i], i, in.size(), stem));
    if (a.whole_parts) {
      targets[i].push_back(fs::absolute(fs::path(a.to[i % n]) / names[i]).string());
    } else {
      for (size_t j = 0; j < n; ++j)
        targets[i].push_back(fs::absolute(fs::path(a.to[j]) / fmt::format("{}.stripe-{}-of-{}", names[i], j + 1, n)).string());
    }
  }
  // A target that is one of the source's own files would be truncated before it is read (a
  // placed model placed again onto its own drives, a GGUF placed whole into its own folder):
  // refuse, whatever --force says.
  for (const auto& file_targets : targets)
    for (const std::string& t : file_targets)
      for (size_t i = 0; i < in.size(); ++i)
        for (const std::string& part : in[i].parts()) {
          std::error_code ec;
          if (fs::equivalent(t, part, ec))
            fail("{}: is a file of the model being placed ({}): place it into other folders", t, sources[i]);
        }

  // What each drive receives, to refuse before writing anything when one is too small.
  std::vector<uint64_t> share(n, 0);
  for (size_t i = 0; i < in.size(); ++i) {
    if (a.whole_parts) {
      share[i % n] += in[i].size();
    } else {
      for (size_t j = 0; j < n; ++j) share[j] += storage::stripe_share(in[i].size(), stripe, n, j);
    }
  }
  for (size_t j = 0; j < n; ++j) check_room(a.to[j], share[j]);

  Progress progress("placing", total);
  uint64_t done = 0;
  storage::Manifest m;
  const uint64_t block = std::max<uint64_t>(stripe * n, 8u << 20) / (stripe * n) * (stripe * n);
  storage::AlignedBuffer buf(block);
  for (size_t i = 0; i < in.size(); ++i) {
    const storage::Placement& src = in[i];
    storage::ManifestFile mf;
    mf.name = names[i];
    mf.size = src.size();
    mf.stripe_bytes = a.whole_parts ? 0 : stripe;
    mf.parts = targets[i];
    std::vector<storage::File> parts;
    for (const std::string& t : mf.parts) parts.push_back(create_part(t, a.force));
    for (uint64_t off = 0; off < src.size(); off += block) {
      const uint64_t len = std::min<uint64_t>(block, src.size() - off);
      src.read_exact(buf.data(), len, off);
      if (a.whole_parts) {
        parts[0].write_all(buf.data(), len);
      } else {
        // `block` is a whole number of stripe rows, so stripe k of the file is stripe k % n of
        // this block too: each part gets its stripes in order.
        for (uint64_t s = 0; s * stripe < len; ++s) {
          const uint64_t take = std::min<uint64_t>(stripe, len - s * stripe);
          parts[s % n].write_all(buf.data() + s * stripe, take);
        }
      }
      done += len;
      progress.update(done);
    }
    for (storage::File& f : parts) finish_part(f);
    m.files.push_back(std::move(mf));
  }
  progress.finish();
  m.write(manifest_path);
  // The manifest reads back as the model it came from (sizes and every part's share).
  for (const std::string& loc : storage::model_locators(manifest_path)) (void)storage::Placement::open(loc);
  std::printf("placed %s (%s) on %zu drive%s%s\n", a.model.c_str(), format_bytes(double(total)).c_str(), n,
              n == 1 ? "" : "s", a.whole_parts ? " as whole parts" : fmt::format(", {} stripes", format_bytes(double(stripe))).c_str());
  for (size_t j = 0; j < n; ++j) std::printf("  %s: %s\n", a.to[j].c_str(), format_bytes(double(share[j])).c_str());
  std::printf("manifest: %s (use it as -m)\n", manifest_path.c_str());
  return 0;
}

}  // namespace

void add_place_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<PlaceArgs>();
  CLI::App* cmd = app.add_subcommand("place", "Stripe a model over several drives and write a placement manifest");
  cmd->add_option("-m,--model", args->model, "Model: a GGUF file, the first part of a split one, or a manifest")->required();
  cmd->add_option("--to", args->to, "Target directories, one per drive (comma-separated)")->required()->delimiter(',');
  cmd->add_option("--stripe", args->stripe, "Stripe size (a multiple of 4 KiB)")->capture_default_str();
  cmd->add_flag("--whole-parts", args->whole_parts, "Place a split model's parts whole (part i on drive i mod N) instead of striping");
  cmd->add_option("-o,--output", args->output, "Manifest path (default: DIR1/<model>.strata.json)");
  cmd->add_flag("--force", args->force, "Overwrite existing parts and manifest");
  cmd->callback([args, &exit_code] { exit_code = run(*args); });
}

}  // namespace strata::tools
