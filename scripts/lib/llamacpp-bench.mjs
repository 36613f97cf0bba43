// llama.cpp's side of scripts/bench-vs-llamacpp.sh, through node-llama-cpp (its prebuilt CPU
// binaries): loads MODEL, then measures prompt processing (one batch of P tokens from an empty
// cache) and decode (N single-token steps from an empty cache) the way llama-bench does: one
// untimed warm-up run of each, then R timed runs, random token ids, logits of the last token only.
//
// The timed span is llama.cpp's own: the context's llama_perf counters (performanceTracking),
// read after each run through printTimings() (llama_perf_context_print, then reset), i.e. the
// time inside llama_decode up to its synchronize. The JS wall-clock time of the same run (one
// addon call per batch, bypassing node-llama-cpp's sequence/batching layer) is recorded next to
// it as wall_*; the difference is node-llama-cpp's per-call overhead.
//
// Usage: NLC_DIR=build/npm-llamacpp node llamacpp-bench.mjs MODEL P N THREADS REPS N_VOCAB
//   P or N may be 0 to skip that test. Prints one JSON object on stdout; progress ("phase: ...")
//   on stderr, so a run killed midway says how far it got. LLAMACPP_BENCH_LOG=FILE keeps
//   llama.cpp's log. bench-vs-llamacpp.sh runs it under scripts/lib/llamacpp-shim.c (LD_PRELOAD).
import path from 'node:path';
import fs from 'node:fs';
import {pathToFileURL} from 'node:url';

const [modelPath, pArg, nArg, tArg, rArg, vocabArg] = process.argv.slice(2);
const P = Number(pArg), N = Number(nArg), T = Number(tArg), R = Number(rArg), nVocab = Number(vocabArg);
if (!modelPath || ![P, N, T, R, nVocab].every(Number.isInteger) || T < 1 || R < 1 || nVocab < 1) {
  console.error('usage: node llamacpp-bench.mjs MODEL P N THREADS REPS N_VOCAB');
  process.exit(2);
}
const nlcDir = path.resolve(process.env.NLC_DIR ?? 'build/npm-llamacpp');
const pkgDir = path.join(nlcDir, 'node_modules', 'node-llama-cpp');
const {getLlama} = await import(pathToFileURL(path.join(pkgDir, 'dist', 'index.js')).href);
const phase = (s) => process.stderr.write(`phase: ${s}\n`);

const logs = [];
let waiters = [];
const logger = (level, message) => {
  logs.push(message.trimEnd());
  for (const w of waiters) w();
};
// llama.cpp's log reaches JS through a thread-safe function, i.e. asynchronously: wait for it.
async function waitForLog(re, timeoutMs = 5000) {
  const t0 = Date.now();
  for (;;) {
    const i = logs.findIndex((l) => re.test(l));
    if (i >= 0) return logs.splice(0, i + 1);
    if (Date.now() - t0 > timeoutMs) throw new Error(`no log line matching ${re}`);
    await new Promise((res) => { waiters = [res]; setTimeout(res, 20); });
  }
}

phase('init');
const llama = await getLlama({gpu: false, build: 'never', logLevel: 'info', logger, maxThreads: T, progressLogs: false});
const allLogs = [];
const keep = (lines) => { for (const l of lines) allLogs.push(l); };
phase('load');
const t0 = performance.now();
const model = await llama.loadModel({modelPath, gpuLayers: 0, useMmap: true, ignoreMemorySafetyChecks: true});
const loadS = (performance.now() - t0) / 1000;
// The load's last lines (the model buffers: CPU_Mapped, CPU_REPACK) arrive asynchronously, and
// node-llama-cpp drops what arrives while createContext() below has muted the log: wait for them.
for (let i = 0; i < 100 && !logs.some((l) => /model buffer size/.test(l)); ++i) await new Promise((r) => setTimeout(r, 20));
await new Promise((r) => setTimeout(r, 100));
// Anonymous memory after the load: about the model's size when the weights were copied (repacked).
const rss = () => {
  const st = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = (k) => Number((st.match(new RegExp(`${k}:\\s+(\\d+)`)) ?? [0, 0])[1]) * 1024;
  return {anon_bytes: kb('RssAnon'), file_bytes: kb('RssFile')};
};
const rssAfterLoad = rss();
const maxLen = Math.max(P, N + 1, 1);
const context = await model.createContext({
  contextSize: Math.max(256, maxLen), batchSize: Math.max(P, 1), sequences: 1,
  threads: {ideal: T, min: T}, performanceTracking: true, ignoreMemorySafetyChecks: true,
});
const ctx = context._ctx;  // the addon's context: one initBatch/addToBatch/decodeBatch per batch
const seq = context.getSequence();
const seqId = seq._sequenceId;  // internal field; the public API hides the id
const threads = ctx.getThreads();
phase('loaded');

// Seeded token ids (a fixed LCG: the same ids on every run).
let rng = 12345;
const randTok = () => (rng = (Math.imul(rng, 1103515245) + 12345) >>> 0) % nVocab;

async function decode(tokens, pos) {
  ctx.initBatch(tokens.length);
  ctx.addToBatch(seqId, pos, Uint32Array.from(tokens), Uint32Array.from([tokens.length - 1]));
  await ctx.decodeBatch();
}
function clearCache() { ctx.removeTokenCellsFromSequence(seqId, 0, -1); }

// Resets llama_perf (print + reset), so the next read covers only what runs in between.
async function perfReset() {
  ctx.printTimings();
  keep(await waitForLog(/graphs reused/));
}
async function perfRead() {
  ctx.printTimings();
  const lines = await waitForLog(/graphs reused/);
  const get = (re) => {
    const l = lines.find((x) => re.test(x));
    const m = l && l.match(/=\s*([\d.]+) ms \/\s*(\d+)/);
    return m ? {ms: Number(m[1]), n: Number(m[2])} : null;
  };
  return {prompt: get(/prompt eval time/), eval: get(/:\s+eval time/)};
}

const stats = (ns, tokens) => {
  const ts = ns.map((x) => tokens / (x / 1e9));
  const mean = (v) => v.reduce((a, b) => a + b, 0) / v.length;
  const sd = (v) => { const m = mean(v); return v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1)) : 0; };
  const s = [...ts].sort((a, b) => a - b);
  const median = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return {samples_ns: ns, samples_ts: ts, avg_ts: mean(ts), stddev_ts: sd(ts), median_ts: median};
};

async function promptTest() {
  const toks = Array.from({length: P}, randTok);
  clearCache();
  await decode(toks, 0);  // warm-up
  const perf = [], wall = [];
  for (let r = 0; r < R; ++r) {
    const ids = Array.from({length: P}, randTok);
    clearCache();
    await perfReset();
    const w0 = process.hrtime.bigint();
    await decode(ids, 0);
    wall.push(Number(process.hrtime.bigint() - w0));
    const p = await perfRead();
    if (!p.prompt || p.prompt.n !== P) throw new Error(`llama_perf counted ${JSON.stringify(p.prompt)}, expected ${P} prompt tokens`);
    perf.push(Math.round(p.prompt.ms * 1e6));
  }
  return {n_prompt: P, n_gen: 0, ...stats(perf, P), wall: stats(wall, P)};
}

async function genTest() {
  clearCache();
  await decode([randTok()], 0);  // warm-up
  const perf = [], wall = [];
  for (let r = 0; r < R; ++r) {
    clearCache();
    await perfReset();
    const w0 = process.hrtime.bigint();
    for (let i = 0; i < N; ++i) await decode([randTok()], i);
    wall.push(Number(process.hrtime.bigint() - w0));
    const p = await perfRead();
    if (!p.eval || p.eval.n !== N) throw new Error(`llama_perf counted ${JSON.stringify(p.eval)}, expected ${N} decode runs`);
    perf.push(Math.round(p.eval.ms * 1e6));
  }
  return {n_prompt: 0, n_gen: N, ...stats(perf, N), wall: stats(wall, N)};
}

const rows = [];
if (P > 0) { phase('pp'); rows.push(await promptTest()); }
if (N > 0) { phase('tg'); rows.push(await genTest()); }
phase('done');
keep(logs.splice(0));

if (process.env.LLAMACPP_BENCH_LOG) fs.writeFileSync(process.env.LLAMACPP_BENCH_LOG, allLogs.join('\n') + '\n');
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
const grep = (re) => allLogs.filter((l) => re.test(l));
const bufferLines = grep(/model buffer size/);
console.log(JSON.stringify({
  node_llama_cpp_version: pkg.version,
  llama_cpp_release: llama.llamaCppRelease,
  build_type: llama.buildType,
  system_info: llama.systemInfo.trim(),
  // ggml loads the best CPU variant it finds among the shipped libggml-cpu-*.so.
  cpu_backend: [...new Set(fs.readFileSync('/proc/self/maps', 'utf8').match(/libggml-cpu-[\w-]+\.so/g) ?? [])],
  model_buffers: bufferLines,
  repack: bufferLines.some((l) => /REPACK/.test(l)),
  load_mode: grep(/load_mode/)[0] ?? null,
  use_mmap: model.useMmap,
  flash_attention: context.flashAttention,
  n_ctx: context.contextSize, n_batch: context.batchSize, n_threads: threads,
  load_s: loadS,
  rss_after_load: rssAfterLoad, rss_at_end: rss(),
  timing: 'llama_perf (time inside llama_decode, from llama_perf_context_print); wall: JS wall clock',
  rows,
}));
await context.dispose();
await model.dispose();
await llama.dispose();
