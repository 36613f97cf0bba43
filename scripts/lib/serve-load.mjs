// Load generator for `strata serve` (no npm packages: Node's own fetch). C clients each send
// R streamed /v1/completions requests back to back and time every token as it arrives; prints
// one JSON object: aggregate generated tok/s, TTFT and inter-token latency percentiles.
// Usage: node serve-load.mjs BASE_URL CLIENTS REQUESTS_PER_CLIENT MAX_TOKENS [PROMPT_WORDS]
const [base, clientsArg, perArg, maxArg, wordsArg] = process.argv.slice(2);
const clients = Number(clientsArg), per = Number(perArg), maxTokens = Number(maxArg);
const words = Number(wordsArg ?? 24);

function prompt(c, r) {
  // Different prompts (and so different routing) per client and request, fixed across runs.
  const vocab = ['river', 'stone', 'light', 'market', 'winter', 'engine', 'garden', 'copper', 'signal', 'harbor',
                 'paper', 'orbit', 'forest', 'glass', 'thunder', 'velvet'];
  const out = [];
  let x = (c * 7919 + r * 104729 + 17) >>> 0;
  for (let i = 0; i < words; ++i) {
    x = (x * 1103515245 + 12345) >>> 0;
    out.push(vocab[x % vocab.length]);
  }
  return out.join(' ');
}

function pct(v, p) {
  if (!v.length) return null;
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))];
}

async function one(c, r, rec) {
  const t0 = performance.now();
  const res = await fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: JSON.stringify({model: 'bench', prompt: prompt(c, r), max_tokens: maxTokens, temperature: 0,
                          stream: true, ignore_eos: true, stream_options: {include_usage: true}}),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const dec = new TextDecoder();
  let buf = '', last = null, n = 0;
  for await (const chunk of res.body) {
    buf += dec.decode(chunk, {stream: true});
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
      const j = JSON.parse(ev.slice(6));
      if (j.usage) rec.completion_tokens += j.usage.completion_tokens;
      if (!j.choices || !j.choices.length || !j.choices[0].text) continue;
      const t = performance.now();
      if (last === null) rec.ttft.push((t - t0) / 1000);
      else rec.itl.push((t - last) / 1000);
      last = t;
      ++n;
    }
  }
  rec.requests += 1;
}

// Counters of /metrics (Prometheus text): name{labels} value -> summed by name.
async function metrics() {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const [k, v] = [line.slice(0, line.lastIndexOf(' ')), Number(line.slice(line.lastIndexOf(' ') + 1))];
    const name = k.replace(/\{.*\}$/, '');
    m[name] = (m[name] ?? 0) + v;
  }
  return m;
}

const rec = {ttft: [], itl: [], requests: 0, completion_tokens: 0};
const m0 = await metrics();
const t0 = performance.now();
await Promise.all(Array.from({length: clients}, async (_, c) => {
  for (let r = 0; r < per; ++r) await one(c, r, rec);
}));
const wall = (performance.now() - t0) / 1000;
const m1 = await metrics();
const d = (k) => (m1[k] ?? 0) - (m0[k] ?? 0);
const steps = d('strata_engine_steps_total');
const stepS = d('strata_engine_step_seconds_total');
const cpuS = d('strata_engine_step_cpu_seconds_total');
const threads = Number(process.env.THREADS ?? 2);
const readBytes = d('strata_weight_bytes_read_total');
const newBytes = d('strata_step_new_bytes_total');
const readGBs = Number(process.env.READ_GBPS ?? 0);  // the drive's measured speed for this model's reads
const perStep = {
  steps, bytes_read: steps ? readBytes / steps : 0, needed_new_bytes: steps ? newBytes / steps : 0,
  tokens: steps ? d('strata_engine_batch_tokens_total') / steps : 0,
  seconds: steps ? stepS / steps : 0,
  // Compute time: the CPU time spent in the step spread over the compute threads (what the
  // step would take with every weight already in memory and perfect parallelism).
  compute_s: steps ? cpuS / threads / steps : 0,
};
const rooflineStepS = Math.max(readGBs > 0 ? perStep.bytes_read / (readGBs * 1e9) : 0, perStep.compute_s);
console.log(JSON.stringify({
  per_step: perStep,
  read_over_needed: newBytes > 0 ? readBytes / newBytes : null,
  read_gbps_measured: readGBs, achieved_read_gbps: stepS > 0 ? readBytes / stepS / 1e9 : 0,
  bytes_read_per_generated_token: rec.completion_tokens ? readBytes / rec.completion_tokens : 0,
  roofline_step_s: rooflineStepS,
  ratio_to_roofline: perStep.seconds > 0 ? rooflineStepS / perStep.seconds : null,
  ratio_to_roofline_wall: steps && wall > 0 ? rooflineStepS * steps / wall : null,
  clients, requests: rec.requests, max_tokens: maxTokens, wall_s: wall,
  generated_tokens: rec.completion_tokens, aggregate_tok_s: rec.completion_tokens / wall,
  ttft_p50_s: pct(rec.ttft, 50), ttft_p99_s: pct(rec.ttft, 99),
  itl_p50_s: pct(rec.itl, 50), itl_p99_s: pct(rec.itl, 99),
}));
