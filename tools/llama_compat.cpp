#include "tools/llama_compat.h"

#include <string_view>

#include "storage/error.h"

namespace strata::tools {
namespace {

struct Rewrite {
  std::string_view llama, strata;  // strata empty: accepted and dropped
};
constexpr Rewrite kRewrites[] = {
    {"-ngl", "--n-gpu-layers"},
    {"-no-cnv", ""},  // llama-cli's "not a chat": strata's run never is one
};

// llama.cpp options with no strata meaning (yet): named in the error rather than misparsed.
struct Missing {
  std::string_view llama, what;
};
constexpr Missing kMissing[] = {
    {"-fa", "flash attention"},         {"-ctk", "KV cache type"},         {"-ctv", "KV cache type"},
    {"-nkvo", "KV offload"},            {"-mmp", "mmap toggle (use --io mmap with --memory-budget)"},
    {"-sm", "split mode"},              {"-mg", "main GPU"},              {"-ts", "tensor split"},
    {"-ub", "micro-batch size"},        {"-tb", "batch thread count"},     {"-cnv", "conversation mode"},
    {"-dev", "device list"},            {"-ot", "tensor overrides"},       {"-np", "parallel sequences (use strata serve)"},
    {"-cb", "continuous batching (strata serve always batches)"},          {"-hf", "Hugging Face download"},
    {"-hfr", "Hugging Face download"},  {"-mu", "model download"},         {"-sp", "special-token printing"},
    {"-nocb", "continuous batching"},   {"-td", "draft threads"},          {"-md", "draft model"},
};

}  // namespace

std::vector<std::string> rewrite_llama_options(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  out.reserve(args.size());
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    // "-ngl=99" as well as "-ngl 99".
    const std::string_view name = std::string_view(a).substr(0, a.find('='));
    const std::string_view value = a.find('=') == std::string::npos ? std::string_view{} : std::string_view(a).substr(a.find('=') + 1);
    // A value that merely looks like an option (a prompt "-fa") follows an option that takes it.
    const bool after_value_option = i > 0 && (args[i - 1] == "-p" || args[i - 1] == "--prompt" || args[i - 1] == "--stop");
    bool done = false;
    if (!after_value_option) {
      for (const Rewrite& r : kRewrites)
        if (name == r.llama) {
          if (!r.strata.empty()) out.push_back(value.empty() ? std::string(r.strata) : std::string(r.strata) + "=" + std::string(value));
          done = true;
        }
      for (const Missing& m : kMissing)
        if (name == m.llama) fail("{} is a llama.cpp option ({}) that strata does not have", m.llama, m.what);
    }
    if (!done) out.push_back(a);
  }
  return out;
}

}  // namespace strata::tools
