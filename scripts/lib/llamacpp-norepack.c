// LD_PRELOAD shim for node-llama-cpp: the same as llama.cpp's `--no-repack` (-nr).
//
// node-llama-cpp 3.21.1 builds its llama_model_params from llama_model_default_params() and never
// sets use_extra_bufts, so the CPU backend always copies Q4_0/Q4_K weights into its repacked
// ("CPU_REPACK") buffers: anonymous memory the size of the model, which a memory cgroup smaller
// than the model cannot hold. This library interposes llama_model_default_params() and turns
// use_extra_bufts off, so every weight stays in the plain mmap of the file ("CPU_Mapped").
// It is built against the llama.h of the llama.cpp release the package bundles
// (llama/gitRelease.bundle), and leaves the params alone (with one line on stderr) when the
// defaults it gets back do not look like that release's.
//
// Build: cc -shared -fPIC -O2 -I INCLUDE -I GGML_INCLUDE -o llamacpp-norepack.so llamacpp-norepack.c -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>

#include "llama.h"

typedef struct llama_model_params (*default_params_fn)(void);

static default_params_fn real_default_params(void) {
  default_params_fn f = (default_params_fn)dlsym(RTLD_NEXT, "llama_model_default_params");
  if (f) return f;
  // The addon dlopen()s libllama into a local scope, which RTLD_NEXT does not search.
  void* h = dlopen("libllama.v0.4.0.so", RTLD_LAZY | RTLD_NOLOAD);
  return h ? (default_params_fn)dlsym(h, "llama_model_default_params") : NULL;
}

struct llama_model_params llama_model_default_params(void) {
  default_params_fn real = real_default_params();
  if (!real) {
    fprintf(stderr, "llamacpp-norepack: llama_model_default_params not found\n");
    struct llama_model_params empty = {0};
    return empty;
  }
  struct llama_model_params p = real();
  // The release's defaults (src/llama-model.cpp): n_gpu_layers -1, load_mode AUTO, repack on.
  if (p.n_gpu_layers == -1 && p.load_mode == LLAMA_LOAD_MODE_AUTO && p.use_extra_bufts && !p.vocab_only &&
      !p.no_alloc) {
    p.use_extra_bufts = false;
    fprintf(stderr, "llamacpp-norepack: use_extra_bufts = false (no repack)\n");
  } else {
    fprintf(stderr, "llamacpp-norepack: unexpected llama_model_params layout; left unchanged\n");
  }
  return p;
}
