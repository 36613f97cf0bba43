// LD_PRELOAD shim for node-llama-cpp 3.21.1, making its bundled llama.cpp run as llama.cpp's own
// tools do where node-llama-cpp offers no option for it. Each part is off unless its variable is 1:
//
// STRATA_LLAMACPP_NO_REPACK=1: llama.cpp's `--no-repack` (-nr). node-llama-cpp builds its
//   llama_model_params from llama_model_default_params() and never sets use_extra_bufts, so the
//   CPU backend always copies Q4_0/Q4_K weights into its repacked ("CPU_REPACK") buffers:
//   anonymous memory the size of the model, which a memory cgroup smaller than the model cannot
//   hold. This interposes llama_model_default_params() and turns use_extra_bufts off, so every
//   weight stays in the plain mmap of the file ("CPU_Mapped").
//
// STRATA_LLAMACPP_THREADPOOL=1: a persistent CPU threadpool per context, as llama-bench and
//   llama-cli attach (ggml_threadpool_new with ggml_threadpool_params_default(n_threads), i.e.
//   llama-bench's defaults: poll 50, no affinity, normal priority). node-llama-cpp attaches none,
//   so every llama_decode creates and joins a throwaway pool of n_threads - 1 threads.
//
// Built against the llama.h of the llama.cpp release the package bundles
// (llama/gitRelease.bundle); it leaves the params alone (with one line on stderr) when the
// defaults it gets back do not look like that release's.
//
// Build: cc -shared -fPIC -O2 -I INCLUDE -I GGML_INCLUDE -o llamacpp-shim.so llamacpp-shim.c -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "llama.h"

// The addon dlopen()s these into a local scope, which RTLD_NEXT does not search.
static void* sym(const char* name) {
  void* f = dlsym(RTLD_NEXT, name);
  static const char* const libs[] = {"libllama.v0.4.0.so", "libggml.v0.4.0.so", "libggml-base.so"};
  for (size_t i = 0; !f && i < sizeof libs / sizeof *libs; ++i) {
    void* h = dlopen(libs[i], RTLD_LAZY | RTLD_NOLOAD);
    if (h) f = dlsym(h, name);
  }
  if (!f) fprintf(stderr, "llamacpp-shim: %s not found\n", name);
  return f;
}

static int enabled(const char* var) {
  const char* v = getenv(var);
  return v && strcmp(v, "1") == 0;
}

struct llama_model_params llama_model_default_params(void) {
  typedef struct llama_model_params (*fn_t)(void);
  fn_t real = (fn_t)sym("llama_model_default_params");
  struct llama_model_params p;
  memset(&p, 0, sizeof p);
  if (!real) return p;
  p = real();
  if (!enabled("STRATA_LLAMACPP_NO_REPACK")) return p;
  // The release's defaults (src/llama-model.cpp): n_gpu_layers -1, load_mode AUTO, repack on.
  if (p.n_gpu_layers == -1 && p.load_mode == LLAMA_LOAD_MODE_AUTO && p.use_extra_bufts && !p.vocab_only &&
      !p.no_alloc) {
    p.use_extra_bufts = false;
    fprintf(stderr, "llamacpp-shim: use_extra_bufts = false (no repack)\n");
  } else {
    fprintf(stderr, "llamacpp-shim: unexpected llama_model_params layout; left unchanged\n");
  }
  return p;
}

// Contexts and the pools attached to them, to free a pool with its context.
static struct {
  struct llama_context* ctx;
  struct ggml_threadpool* tp;
} pools[64];
static pthread_mutex_t pools_mu = PTHREAD_MUTEX_INITIALIZER;

struct llama_context* llama_init_from_model(struct llama_model* model, struct llama_context_params params) {
  typedef struct llama_context* (*fn_t)(struct llama_model*, struct llama_context_params);
  fn_t real = (fn_t)sym("llama_init_from_model");
  if (!real) return NULL;
  struct llama_context* ctx = real(model, params);
  if (!ctx || !enabled("STRATA_LLAMACPP_THREADPOOL")) return ctx;

  ggml_backend_dev_t (*dev_by_type)(enum ggml_backend_dev_type) = sym("ggml_backend_dev_by_type");
  ggml_backend_reg_t (*dev_reg)(ggml_backend_dev_t) = sym("ggml_backend_dev_backend_reg");
  void* (*get_proc)(ggml_backend_reg_t, const char*) = sym("ggml_backend_reg_get_proc_address");
  struct ggml_threadpool_params (*params_default)(int) = sym("ggml_threadpool_params_default");
  void (*attach)(struct llama_context*, ggml_threadpool_t, ggml_threadpool_t) = sym("llama_attach_threadpool");
  if (!dev_by_type || !dev_reg || !get_proc || !params_default || !attach) return ctx;
  ggml_backend_dev_t cpu = dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
  if (!cpu) return ctx;
  struct ggml_threadpool* (*tp_new)(struct ggml_threadpool_params*) = get_proc(dev_reg(cpu), "ggml_threadpool_new");
  if (!tp_new) return ctx;
  struct ggml_threadpool_params tpp = params_default(params.n_threads);
  struct ggml_threadpool* tp = tp_new(&tpp);
  if (!tp) return ctx;
  attach(ctx, tp, NULL);
  pthread_mutex_lock(&pools_mu);
  for (size_t i = 0; i < sizeof pools / sizeof *pools; ++i)
    if (!pools[i].ctx) {
      pools[i].ctx = ctx, pools[i].tp = tp;
      break;
    }
  pthread_mutex_unlock(&pools_mu);
  fprintf(stderr, "llamacpp-shim: threadpool of %d threads attached\n", params.n_threads);
  return ctx;
}

void llama_free(struct llama_context* ctx) {
  void (*real)(struct llama_context*) = sym("llama_free");
  struct ggml_threadpool* tp = NULL;
  pthread_mutex_lock(&pools_mu);
  for (size_t i = 0; i < sizeof pools / sizeof *pools; ++i)
    if (ctx && pools[i].ctx == ctx) {
      tp = pools[i].tp;
      pools[i].ctx = NULL, pools[i].tp = NULL;
    }
  pthread_mutex_unlock(&pools_mu);
  if (real) real(ctx);
  if (tp) {
    ggml_backend_dev_t (*dev_by_type)(enum ggml_backend_dev_type) = sym("ggml_backend_dev_by_type");
    ggml_backend_reg_t (*dev_reg)(ggml_backend_dev_t) = sym("ggml_backend_dev_backend_reg");
    void* (*get_proc)(ggml_backend_reg_t, const char*) = sym("ggml_backend_reg_get_proc_address");
    ggml_backend_dev_t cpu = dev_by_type ? dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU) : NULL;
    void (*tp_free)(struct ggml_threadpool*) = cpu && dev_reg && get_proc ? get_proc(dev_reg(cpu), "ggml_threadpool_free") : NULL;
    if (tp_free) tp_free(tp);
  }
}
