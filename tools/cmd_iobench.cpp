// `strata iobench`: what strata's read path gets from a set of drives or files. Sequential and
// random O_DIRECT reads at several block sizes (and the model's unit sizes with -m) and queue
// depths, each drive alone and then all together, through make_read_backend (storage/io_benchmark.h).
// Prints a table, or fio's --output-format=json shape (--json, -o) that fio tooling reads, and can
// save the drive profile `strata plan` reads (format in storage/README.md).
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/gguf/gguf.h"
#include "storage/error.h"
#include "storage/io_benchmark.h"
#include "tools/commands.h"
#include "tools/iobench_report.h"
#include "tools/common.h"
#include "tools/units.h"
#include "tools/validators.h"

namespace strata::tools {
namespace {

using json = nlohmann::ordered_json;
using storage::IoJobResult;
using Row = IoBenchRow;
using storage::IoPattern;

struct IoBenchArgs {
  std::vector<std::string> targets, bs{"4K", "128K", "1M"}, rw{"read", "randread"};
  std::vector<int> qd{1, 4, 16, 64};
  std::string model, size = "1G", io = "uring", output, profile;
  double runtime = 2;
  bool json = false, no_together = false, keep = false;
};

constexpr uint64_t kPage = 4096;
uint64_t page_up(uint64_t v) { return (v + kPage - 1) / kPage * kPage; }

// The sizes strata reads a model in: its largest expert (one expert's gate, up and down slices
// of a layer, each 4 KiB-aligned) and its largest dense matrix, each rounded up to 4 KiB.
std::vector<uint64_t> model_unit_sizes(const std::string& path) {
  const gguf::GGUFFile f = gguf::GGUFFile::open(path);
  std::map<std::string, uint64_t> expert_by_layer;
  uint64_t dense = 0;
  for (const gguf::TensorInfo& t : f.tensors()) {
    const bool expert = t.shape.size() == 3 && t.name.find("_exps.weight") != std::string::npos;
    if (expert && t.shape[2] > 0)
      expert_by_layer[t.name.substr(0, t.name.find('.', 4))] += page_up(t.nbytes / uint64_t(t.shape[2]));
    else if (t.shape.size() == 2)
      dense = std::max(dense, page_up(t.nbytes));
  }
  std::vector<uint64_t> units;
  uint64_t expert = 0;
  for (const auto& [layer, bytes] : expert_by_layer) expert = std::max(expert, page_up(bytes));
  if (expert) units.push_back(expert);
  if (dense && dense != expert) units.push_back(dense);
  if (units.empty()) fail("{}: no expert or 2-D weight tensors to take unit sizes from", path);
  return units;
}

// A target: the file read, and whether iobench wrote it (removed at the end unless --keep).
struct Target {
  std::string arg, file;
  bool written = false;
};

void prepare_targets(const IoBenchArgs& a, std::vector<Target>& ts) {
  const uint64_t size = parse_size(a.size, "--size");
  for (const std::string& t : a.targets) {
    struct stat st {};
    if (::stat(t.c_str(), &st) != 0)
      fail("{}: no such file or directory (a TARGET is a file to read, or a directory to write a test file in)", t);
    if (!S_ISDIR(st.st_mode)) {
      ts.push_back({t, t, false});
      continue;
    }
    const std::string file = (std::filesystem::path(t) / "strata-iobench.dat").string();
    std::fprintf(stderr, "iobench: writing a %s test file %s\n", format_bytes(double(size)).c_str(), file.c_str());
    ts.push_back({t, file, true});  // before writing: a failed write is removed too
    storage::write_test_file(file, size);
  }
}

struct Remover {
  std::vector<Target>* ts;
  bool keep;
  ~Remover() {
    for (const Target& t : *ts) {
      std::error_code ec;
      if (t.written && !keep) std::filesystem::remove(t.file, ec);
    }
  }
};

int run(const IoBenchArgs& a) {
  std::vector<uint64_t> bss, units;
  for (const std::string& s : a.bs) bss.push_back(parse_size(s, "--bs"));
  if (!a.model.empty()) units = model_unit_sizes(a.model);
  for (uint64_t u : units) bss.push_back(u);
  std::sort(bss.begin(), bss.end());
  bss.erase(std::unique(bss.begin(), bss.end()), bss.end());
  std::vector<unsigned> qds(a.qd.begin(), a.qd.end());
  std::sort(qds.begin(), qds.end());
  qds.erase(std::unique(qds.begin(), qds.end()), qds.end());
  const double ram = double(::sysconf(_SC_PHYS_PAGES)) * double(::sysconf(_SC_PAGE_SIZE));
  if (ram > 0 && double(bss.back()) * double(qds.back()) > ram / 2)
    fail("--bs {} x --qd {} needs {} of read buffers, more than half of this machine's memory ({})",
         size_label(bss.back()), qds.back(), format_bytes(double(bss.back()) * double(qds.back())), format_bytes(ram));
  std::vector<IoPattern> rws;
  for (const char* r : {"read", "randread"})
    if (std::find(a.rw.begin(), a.rw.end(), r) != a.rw.end())
      rws.push_back(r == std::string("read") ? IoPattern::sequential : IoPattern::random);

  std::vector<Target> targets;
  Remover remover{&targets, a.keep};
  prepare_targets(a, targets);
  std::vector<std::string> paths;
  for (const Target& t : targets) paths.push_back(t.file);
  // Refuse what cannot run before the first job rather than minutes later: one read of each size.
  for (const std::string& p : paths)
    for (uint64_t bs : bss) (void)storage::run_io_job({p, IoPattern::random, bs, 1, 0, 1, a.io});

  const bool together = paths.size() > 1 && !a.no_together;
  const size_t combos = rws.size() * bss.size() * qds.size();
  const size_t total = combos * (paths.size() + (together ? 1 : 0));
  std::fprintf(stderr, "iobench: %zu jobs of %g s (%zu drive%s%s): about %s\n", total, a.runtime, paths.size(),
               paths.size() > 1 ? "s" : "", together ? ", then all together" : "",
               format_duration(double(total) * a.runtime).c_str());
  std::vector<Row> rows;
  size_t done = 0;
  int group = 0;
  auto progress = [&](const Row& r, const std::string& name) {
    std::fprintf(stderr, "[%zu/%zu] %s: %s, %.0f IOPS, p50 %s, p99 %s\n", ++done, total, name.c_str(),
                 format_rate(r.bw).c_str(), r.iops, latency_label(r.p50).c_str(), latency_label(r.p99).c_str());
  };
  auto spec = [&](const std::string& p, IoPattern rw, uint64_t bs, unsigned qd) {
    return storage::IoJobSpec{p, rw, bs, qd, a.runtime, 0, a.io, 1 + done};
  };
  auto name_of = [](const std::string& who, IoPattern rw, uint64_t bs, unsigned qd) {
    return fmt::format("{}-{}-{}-qd{}", who, storage::io_pattern_name(rw), size_label(bs), qd);
  };
  for (size_t d = 0; d < paths.size(); ++d)
    for (IoPattern rw : rws)
      for (uint64_t bs : bss)
        for (unsigned qd : qds) {
          const IoJobResult r = storage::run_io_job(spec(paths[d], rw, bs, qd));
          const std::string name = name_of(fmt::format("d{}", d), rw, bs, qd);
          rows.push_back(make_row(r, int(d), false, fio_job_json(r, name, group++, r.bw(), a.runtime)));
          progress(rows.back(), name);
        }
  if (together)
    for (IoPattern rw : rws)
      for (uint64_t bs : bss)
        for (unsigned qd : qds) {
          std::vector<storage::IoJobSpec> specs;
          for (const std::string& p : paths) specs.push_back(spec(p, rw, bs, qd));
          const std::vector<IoJobResult> rs = storage::run_io_jobs_together(specs);
          const IoJobResult all = aggregate_jobs(rs);
          for (size_t d = 0; d < rs.size(); ++d) {
            const std::string name = name_of(fmt::format("together-d{}", d), rw, bs, qd);
            rows.push_back(make_row(rs[d], int(d), true, fio_job_json(rs[d], name, group, all.bw(), a.runtime)));
          }
          const std::string name = name_of("together-all", rw, bs, qd);
          rows.push_back(make_row(all, -1, true, fio_job_json(all, name, group++, all.bw(), a.runtime)));
          progress(rows.back(), name);
        }

  if (!a.json || !a.output.empty()) print_iobench_table(rows, paths, units);
  if (a.json || !a.output.empty()) {
    json out;
    out["fio version"] = "strata-iobench-0.1.0";
    out["timestamp"] = int64_t(std::time(nullptr));
    out["timestamp_ms"] = int64_t(std::time(nullptr)) * 1000;
    char when[64];
    const std::time_t t = std::time(nullptr);
    std::strftime(when, sizeof when, "%a %b %e %H:%M:%S %Y", std::localtime(&t));
    out["time"] = when;
    out["global options"] = {{"ioengine", "strata-" + a.io}, {"direct", "1"}, {"runtime", fmt::format("{}", a.runtime)}};
    json jobs = json::array();
    for (Row& r : rows) jobs.push_back(std::move(r.job));
    out["jobs"] = std::move(jobs);
    out["disk_util"] = json::array();
    if (a.json) std::printf("%s\n", out.dump(2).c_str());
    if (!a.output.empty()) {
      std::ofstream f(a.output);
      if (!(f << out.dump(2) << "\n")) fail("-o {}: cannot write the JSON report", a.output);
    }
  }
  if (!a.profile.empty()) {
    json p = drive_profile(rows, paths.size(), units, together, a.io);
    for (size_t d = 0; d < targets.size(); ++d) p["drives"][d]["path"] = targets[d].arg;
    std::ofstream f(a.profile);
    if (!(f << p.dump(2) << "\n")) fail("--save-profile {}: cannot write the drive profile", a.profile);
    std::fprintf(stderr, "iobench: drive profile written to %s\n", a.profile.c_str());
  }
  return 0;
}

}  // namespace

void add_iobench_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<IoBenchArgs>();
  CLI::App* c = app.add_subcommand(
      "iobench", "Measure drives or files through strata's read path (O_DIRECT, io_uring): sequential and random reads "
                 "at several sizes and queue depths, each drive alone and all together; fio-shaped JSON");
  c->add_option("targets", a->targets,
                "Files to read, or directories to write a --size test file (strata-iobench.dat) in; one per drive")
      ->required();
  c->add_option("-m,--model", a->model, "A GGUF model: also measure its unit sizes (largest expert, largest matrix)");
  c->add_option("--bs", a->bs, "Block sizes, comma-separated (4K, 128K, 1M)")->delimiter(',')->capture_default_str();
  c->add_option("--qd", a->qd, "Queue depths, comma-separated")
      ->delimiter(',')
      ->check(integer_at_least(1, 4096))
      ->capture_default_str();
  c->add_option("--rw", a->rw, "Patterns, comma-separated: read (sequential), randread")
      ->delimiter(',')
      ->check(CLI::IsMember({"read", "randread"}))
      ->capture_default_str();
  c->add_option("--runtime", a->runtime, "Seconds per job")->check(between(0.01, 3600))->capture_default_str();
  c->add_option("--size", a->size, "Size of the test file written in a directory target")->capture_default_str();
  c->add_option("--io", a->io, "Read backend")->check(CLI::IsMember({"uring", "pread"}))->capture_default_str();
  c->add_flag("--json", a->json, "Print fio's --output-format=json shape instead of the table");
  c->add_option("-o,--output", a->output, "Also write the fio-shaped JSON to FILE");
  c->add_option("--save-profile", a->profile, "Write the drive profile `strata plan` reads");
  c->add_flag("--no-together", a->no_together, "Skip the run with every drive at once");
  c->add_flag("--keep", a->keep, "Keep the test files written in directory targets");
  c->callback([a, &exit_code] { exit_code = run(*a); });
}

}  // namespace strata::tools
