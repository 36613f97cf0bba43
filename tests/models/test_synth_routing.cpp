// Routing of synthesized MoEs, watched through Model::set_routing_observer: zipf routing makes
// a few experts of each layer popular (the ones synth gave the highest router gains) while
// uniform routing spreads the choices; consecutive tokens of a sequence reuse experts more
// than independent choices would; and all of it follows from the seed.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "models/gguf/gguf.h"
#include "models/model.h"
#include "models/synth.h"
#include "storage/error.h"
#include "storage/file.h"

using namespace strata;

namespace {

constexpr int64_t kExperts = 32, kUsed = 4, kLayers = 4;

models::SynthSpec spec(models::SynthRouting routing, uint64_t seed) {
  models::SynthSpec s = models::default_synth_spec(models::SynthArch::Mixtral);
  s.n_layer = kLayers;
  s.n_embd = 128;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.n_expert = kExperts;
  s.n_expert_used = kUsed;
  s.n_ff = 128;
  s.n_vocab = 512;
  s.ctx_len = 256;
  s.type = compute::DType::Q8_0;
  s.routing = routing;
  s.zipf_s = 0.5;
  s.seed = seed;
  return s;
}

std::string synth(const models::SynthSpec& s, const std::string& name) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("strata_synth_routing_" + std::to_string(::getpid()) + "_" + name + ".gguf");
  return models::synth_model(s, path.string()).path;
}

// choices[layer][token]: the experts the router chose, in the observer's order.
using Choices = std::vector<std::vector<std::vector<int32_t>>>;

// Runs the batch through the model and returns what the observer saw.
Choices route(models::Model& m, std::vector<models::BatchItem> batch) {
  Choices c(kLayers);
  m.set_routing_observer([&](int64_t layer, int64_t n_tokens, int64_t n_used, const int32_t* e) {
    for (int64_t t = 0; t < n_tokens; ++t) c[layer].emplace_back(e + t * n_used, e + (t + 1) * n_used);
  });
  models::ForwardOutput out;
  m.forward(batch, out);
  m.set_routing_observer({});
  return c;
}

std::vector<int32_t> random_tokens(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> d(3, 511);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = d(rng);
  return t;
}

// 512 one-token sequences in one batch: no token sees another, so what they share is the
// model's own preference.
Choices route_independent(models::Model& m) {
  const std::vector<int32_t> tokens = random_tokens(512, 7);
  std::vector<models::KVCache> kv;
  for (size_t i = 0; i < tokens.size(); ++i) kv.push_back(m.new_cache(2));
  std::vector<models::BatchItem> batch;
  for (size_t i = 0; i < tokens.size(); ++i) batch.push_back({&kv[i], std::span<const int32_t>(&tokens[i], 1), false});
  return route(m, batch);
}

// One sequence of 64 tokens.
Choices route_sequence(models::Model& m, uint32_t seed) {
  const std::vector<int32_t> tokens = random_tokens(64, seed);
  models::KVCache kv = m.new_cache(64);
  return route(m, {{&kv, tokens, false}});
}

// share[e]: the fraction of the layer's tokens that chose expert e.
std::vector<double> shares(const std::vector<std::vector<int32_t>>& tokens) {
  std::vector<double> s(kExperts, 0.0);
  for (const auto& chosen : tokens)
    for (int32_t e : chosen) s[size_t(e)] += 1.0 / double(tokens.size());
  return s;
}

// The mean fraction of a token's experts that the token before it also chose.
double reuse(const std::vector<std::vector<int32_t>>& tokens) {
  double sum = 0;
  for (size_t t = 1; t < tokens.size(); ++t)
    for (int32_t e : tokens[t]) sum += double(std::count(tokens[t - 1].begin(), tokens[t - 1].end(), e)) / kUsed;
  return sum / double(tokens.size() - 1);
}

// What reuse() would be if each token chose independently with these shares: the chance that a
// given expert of one token is among the other's is sum_e share_e^2 / n_used.
double independent_reuse(const std::vector<double>& share) {
  double sum = 0;
  for (double s : share) sum += s * s / kUsed;
  return sum;
}

}  // namespace

TEST_CASE("zipf routing makes the experts synth ranked highest popular; uniform routing spreads choices") {
  const double uniform_share = double(kUsed) / kExperts;  // 1/8 of the tokens per expert
  for (auto routing : {models::SynthRouting::Zipf, models::SynthRouting::Uniform}) {
    const std::string name = models::synth_routing_name(routing);
    CAPTURE(name);
    const models::SynthSpec s = models::resolve_synth_spec(spec(routing, 3));
    const std::string path = synth(s, name);
    auto model = models::Model::load(path);
    const Choices c = route_independent(*model);
    double top = 0;  // the most chosen expert's share, averaged over the layers
    for (int64_t l = 0; l < kLayers; ++l) {
      CAPTURE(l);
      const std::vector<double> share = shares(c[l]);
      top += *std::max_element(share.begin(), share.end()) / kLayers;
      const std::vector<float> gain = models::synth_router_gains(s, l);
      if (routing == models::SynthRouting::Zipf) {
        // The four experts with the highest gains take well over their even part (1/8) of all
        // the layer's choices.
        std::vector<size_t> by_gain(gain.size());
        for (size_t e = 0; e < by_gain.size(); ++e) by_gain[e] = e;
        std::sort(by_gain.begin(), by_gain.end(), [&](size_t a, size_t b) { return gain[a] > gain[b]; });
        double first4 = 0;
        for (size_t r = 0; r < 4; ++r) first4 += share[by_gain[r]] / kUsed;
        CHECK(first4 > 1.6 * 4.0 / kExperts);
      } else {
        CHECK(std::all_of(gain.begin(), gain.end(), [](float g) { return g == 1.0f; }));
      }
    }
    MESSAGE(name, ": the top expert of a layer is chosen by ", top, " of the tokens on average (even: ", uniform_share, ")");
    // Random weights are not perfectly even either (the hidden states are not isotropic), but
    // zipf's favourites stand far above that.
    if (routing == models::SynthRouting::Zipf) CHECK(top > 2.25 * uniform_share);
    else CHECK(top < 2.0 * uniform_share);
    std::filesystem::remove(path);
  }
}

TEST_CASE("consecutive tokens reuse experts more often than independent choices would") {
  const models::SynthSpec s = models::resolve_synth_spec(spec(models::SynthRouting::Zipf, 3));
  const std::string path = synth(s, "locality");
  auto model = models::Model::load(path);
  const Choices everyone = route_independent(*model);
  double seq_reuse = 0, own = 0, global = 0;
  int n = 0;
  for (uint32_t seed : {11u, 12u, 13u}) {
    const Choices c = route_sequence(*model, seed);
    for (int64_t l = 0; l < kLayers; ++l) {
      seq_reuse += reuse(c[l]);
      own += independent_reuse(shares(c[l]));  // the sequence's own shares: its drift removed
      global += independent_reuse(shares(everyone[l]));
      ++n;
    }
  }
  seq_reuse /= n;
  own /= n;
  global /= n;
  MESSAGE("reuse between consecutive tokens ", seq_reuse, "; independent choices with the sequence's own shares ",
          own, ", with the model's shares ", global);
  CHECK(seq_reuse > own + 0.03);
  CHECK(seq_reuse > 1.5 * global);
  std::filesystem::remove(path);
}

TEST_CASE("routing follows from the seed") {
  auto trace_of = [](uint64_t seed, const std::string& name) {
    const std::string path = synth(spec(models::SynthRouting::Zipf, seed), name);
    auto model = models::Model::load(path);
    const Choices c = route_sequence(*model, 21);
    std::filesystem::remove(path);
    return c;
  };
  const Choices a = trace_of(5, "seed_a"), b = trace_of(5, "seed_b"), c = trace_of(6, "seed_c");
  CHECK(a == b);
  CHECK(a != c);
  const models::SynthSpec s5 = models::resolve_synth_spec(spec(models::SynthRouting::Zipf, 5));
  const models::SynthSpec s6 = models::resolve_synth_spec(spec(models::SynthRouting::Zipf, 6));
  CHECK(models::synth_router_gains(s5, 0) == models::synth_router_gains(s5, 0));
  CHECK(models::synth_router_gains(s5, 0) != models::synth_router_gains(s6, 0));
  CHECK(models::synth_router_gains(s5, 0) != models::synth_router_gains(s5, 1));  // each layer its own
}

TEST_CASE("router gains: a power law of the rank with an RMS of 1, the exponent within 25% of --zipf") {
  models::SynthSpec s = models::resolve_synth_spec(spec(models::SynthRouting::Zipf, 9));
  s.zipf_s = 0.8;
  for (int64_t l = 0; l < 8; ++l) {
    CAPTURE(l);
    std::vector<float> g = models::synth_router_gains(s, l);
    REQUIRE(g.size() == size_t(kExperts));
    double sq = 0;
    for (float x : g) sq += double(x) * x;
    CHECK(std::sqrt(sq / double(g.size())) == doctest::Approx(1.0).epsilon(1e-5));
    std::sort(g.rbegin(), g.rend());
    // gain(rank r) / gain(rank 0) = (r + 1)^-exponent, the same exponent at every rank.
    const double exponent = -std::log(double(g[1]) / g[0]) / std::log(2.0);
    CHECK(exponent >= 0.75 * s.zipf_s - 1e-6);
    CHECK(exponent <= 1.25 * s.zipf_s + 1e-6);
    for (size_t r : {3u, 10u, 31u}) CHECK(double(g[r]) / g[0] == doctest::Approx(std::pow(double(r + 1), -exponent)).epsilon(1e-4));
  }
  s.zipf_s = 0;
  for (float x : models::synth_router_gains(s, 0)) CHECK(x == doctest::Approx(1.0f));
  s.zipf_s = 9;
  CHECK_THROWS_WITH_AS(models::resolve_synth_spec(s), doctest::Contains("--zipf"), strata::Error);
}

TEST_CASE("a zipf router in the file is the uniform router with each row times its gain") {
  const models::SynthSpec zipf = models::resolve_synth_spec(spec(models::SynthRouting::Zipf, 4));
  const models::SynthSpec uniform = models::resolve_synth_spec(spec(models::SynthRouting::Uniform, 4));
  const std::string zp = synth(zipf, "rows_zipf"), up = synth(uniform, "rows_uniform");
  auto router = [](const std::string& path, int64_t layer) {
    const auto f = gguf::GGUFFile::open(path);
    const auto& t = f.require_tensor("blk." + std::to_string(layer) + ".ffn_gate_inp.weight", "test");
    std::vector<float> v(size_t(t.n_elements));
    storage::File::open_read(path).read_exact(v.data(), t.nbytes, t.offset);
    return v;
  };
  const int64_t E = zipf.n_embd;
  for (int64_t l = 0; l < kLayers; ++l) {
    CAPTURE(l);
    const std::vector<float> z = router(zp, l), u = router(up, l), gain = models::synth_router_gains(zipf, l);
    for (int64_t e = 0; e < kExperts; ++e) {
      // The same random values, row e scaled by its gain (same seed, same tensor index).
      for (int64_t i = 0; i < E; i += 17) CHECK(z[e * E + i] == doctest::Approx(u[e * E + i] * gain[e]).epsilon(1e-6));
      double sq = 0;
      for (int64_t i = 0; i < E; ++i) sq += double(u[e * E + i]) * u[e * E + i];
      CHECK(std::sqrt(sq / double(E)) == doctest::Approx(1.0 / std::sqrt(double(E))).epsilon(0.2));
    }
  }
  CHECK(gguf::GGUFFile::open(zp).get_string("strata.synth.routing") == "zipf");
  CHECK(gguf::GGUFFile::open(up).get_string("strata.synth.routing") == "uniform");
  std::filesystem::remove(zp);
  std::filesystem::remove(up);
}
