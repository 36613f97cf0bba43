// Bounded load: 64 concurrent clients for a bounded time and count, streamed chat/completions
// (about a third aborted mid-stream at a random point) mixed with non-streamed requests and
// Ollama streams. After each round the server must be idle (no active or queued sequence),
// answer /health, have sent no 5xx but 429/503, and its RSS must be stable from round to round.
// run.sh then sends SIGTERM and checks that the server exits 0 within a few seconds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { APIError, APIUserAbortError } from 'openai';
import { Ollama } from 'ollama';
import { BASE, KEY, MODEL, PID, auth, http, metrics, requestsWhere, waitIdle, rssBytes, MiB, sleep } from './lib.mjs';

const CLIENTS = Number(process.env.LOAD_CLIENTS || 64);
const ROUND_MS = Number(process.env.LOAD_ROUND_MS || 10000);
const WARMUP_MS = Number(process.env.LOAD_WARMUP_MS || 3000);
const MAX_REQUESTS = Number(process.env.LOAD_MAX_REQUESTS || 4000);  // per round, over all clients
const RSS_SLACK = 8 * 1048576;  // round 2 may end at most this much (or 25%) above round 1

const openai = new OpenAI({ baseURL: `${BASE}/v1`, apiKey: KEY, maxRetries: 0, timeout: 60000 });
const ollama = new Ollama({ host: BASE, headers: auth });
const chatMessages = [{ role: 'user', content: 'Load test: write a long answer.' }];
const refParams = { model: MODEL, messages: [{ role: 'user', content: 'The reference question.' }], max_tokens: 16, temperature: 0, ignore_eos: true };

// A small seeded PRNG, so a round's mix is the same every run.
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// What each client is doing, for the report when a request hangs with nothing left to wake it.
const inFlight = [];
process.on('beforeExit', () => {
  const stuck = inFlight.filter(Boolean);
  if (stuck.length) console.error(`requests that never settled:\n  ${stuck.join('\n  ')}`);
});

function newStats() {
  return { requests: 0, completed: 0, streamed: 0, nonStreamed: 0, ollama: 0, aborted: 0, abortedBeforeEnd: 0,
    status429: 0, status503: 0, tokens: 0, refChecked: 0, failures: [] };
}

async function round(seed, ms, reference) {
  const st = newStats();
  const deadline = Date.now() + ms;
  const fail = (what) => { if (st.failures.length < 20) st.failures.push(what); else st.failures.length++; };
  // 429 (queue full) and 503 are allowed under overload: counted, and the client backs off a little.
  const refused = async (e) => {
    const status = e instanceof APIError ? e.status : e?.name === 'ResponseError' ? e.status_code : 0;
    if (status !== 429 && status !== 503) return false;
    if (status === 429) ++st.status429;
    else ++st.status503;
    if (e instanceof APIError && !(Number(e.headers?.get('retry-after')) >= 1)) fail(`${status} without Retry-After`);
    await sleep(100 + Math.random() * 200);
    return true;
  };

  // A streamed chat or completion; `abortAt` > 0 aborts after that many content chunks.
  async function openaiStream(chat, maxTokens, abortAt) {
    const ac = new AbortController();
    const body = { model: MODEL, max_tokens: maxTokens, temperature: 0.7, seed: st.requests, ignore_eos: true, stream: true,
      stream_options: { include_usage: true } };
    const stream = chat
      ? await openai.chat.completions.create({ ...body, messages: chatMessages }, { signal: ac.signal })
      : await openai.completions.create({ ...body, prompt: 'Load test prompt' }, { signal: ac.signal });
    let chunks = 0, finish = null, usage = null, aborted = false;
    try {
      for await (const c of stream) {
        if (c.usage) { usage = c.usage; continue; }
        const ch = c.choices[0];
        if (ch.finish_reason) finish = ch.finish_reason;
        if ((chat ? ch.delta.content : ch.text)) ++chunks;
        if (abortAt && chunks === abortAt) {
          aborted = true;
          ac.abort();  // the SDK's iterator would end quietly, after the chunks it already parsed
          break;
        }
      }
    } catch (e) {
      if (!(aborted && e instanceof APIUserAbortError)) throw e;
    }
    if (aborted) {
      ++st.aborted;
      if (!finish) ++st.abortedBeforeEnd;
      return;
    }
    if (finish !== 'length') return fail(`streamed finish_reason ${finish}`);
    if (!usage || usage.completion_tokens !== maxTokens) return fail(`streamed usage ${JSON.stringify(usage)}, max_tokens ${maxTokens}`);
    st.tokens += usage.completion_tokens;
    ++st.completed;
  }

  async function ollamaStream(maxTokens, abortAt) {
    const it = await ollama.generate({ model: MODEL, prompt: 'Ollama load', stream: true,
      options: { num_predict: maxTokens, temperature: 0.7, seed: st.requests } });
    let lines = 0, last = null, aborted = false;
    try {
      for await (const p of it) {
        if (p.done) last = p;
        else if (++lines === abortAt) {
          aborted = true;
          it.abort();  // lines already read would still come: stop reading
          break;
        }
      }
    } catch (e) {
      if (!(aborted && e?.name === 'AbortError')) throw e;
    }
    if (aborted) {
      ++st.aborted;
      ++st.abortedBeforeEnd;
      return;
    }
    if (!last) return fail('ollama stream without a done line');
    if (last.done_reason === 'length' && last.eval_count !== maxTokens) return fail(`ollama eval_count ${last.eval_count} != ${maxTokens}`);
    st.tokens += last.eval_count;
    ++st.completed;
  }

  // Non-streamed: the greedy reference question, whose answer must not depend on the batch.
  async function nonStreamed() {
    const r = await openai.chat.completions.create(refParams);
    if (r.choices[0].finish_reason !== 'length' || r.usage.completion_tokens !== refParams.max_tokens)
      return fail(`non-streamed: ${r.choices[0].finish_reason}, ${JSON.stringify(r.usage)}`);
    if (r.choices[0].message.content !== reference) return fail(`greedy answer under load differs: ${JSON.stringify(r.choices[0].message.content)} vs ${JSON.stringify(reference)}`);
    ++st.refChecked;
    st.tokens += r.usage.completion_tokens;
    ++st.completed;
  }

  async function client(i) {
    const rand = rng(seed * 1000 + i);
    while (Date.now() < deadline && st.requests < MAX_REQUESTS) {
      ++st.requests;
      const kind = rand();
      const maxTokens = 8 + Math.floor(rand() * 40);
      const abortAt = rand() < 1 / 3 ? 1 + Math.floor(rand() * (maxTokens / 2)) : 0;
      inFlight[i] = `client ${i}: kind ${kind.toFixed(2)}, max_tokens ${maxTokens}, abort at ${abortAt}`;
      try {
        if (kind < 0.2) { ++st.nonStreamed; await nonStreamed(); }
        else if (kind < 0.3) { ++st.ollama; ++st.streamed; await ollamaStream(maxTokens, abortAt); }
        else { ++st.streamed; await openaiStream(kind < 0.65, maxTokens, abortAt); }
      } catch (e) {
        if (!(await refused(e))) fail(`${e?.constructor?.name}: ${e?.status ?? ''} ${e?.message}`);
      }
      inFlight[i] = null;
    }
  }

  const t0 = Date.now();
  await Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(i)));
  st.seconds = (Date.now() - t0) / 1000;
  return st;
}

// After a round: idle, healthy, no unexpected 5xx; returns the RSS.
const GENERATION_ENDPOINTS = new Set(['/v1/chat/completions', '/v1/completions', '/api/generate']);
const generationRequests = (m) => requestsWhere(m, (ep) => GENERATION_ENDPOINTS.has(ep));

async function settle(t, name, st, before) {
  let m = await waitIdle(5000);
  assert.equal(m.strata_active_sequences, 0, `${name}: active sequences after the load`);
  assert.equal(m.strata_queued_sequences, 0, `${name}: queued sequences after the load`);
  // Every request is counted once, whatever its end (200, 429, 499 ...); the last counts may
  // trail the engine's idle state by a moment.
  for (let i = 0; i < 30 && generationRequests(m) - generationRequests(before) !== st.requests; ++i) {
    await sleep(100);
    m = await metrics();
  }
  const h = await http('/health');
  assert.equal(h.status, 200);
  assert.equal(h.json.status, 'ok');
  const bad5xx = requestsWhere(m, (_, s) => s >= 500 && s !== 503) - requestsWhere(before, (_, s) => s >= 500 && s !== 503);
  const s429 = requestsWhere(m, (_, s) => s === 429) - requestsWhere(before, (_, s) => s === 429);
  const s503 = requestsWhere(m, (_, s) => s === 503) - requestsWhere(before, (_, s) => s === 503);
  const s499 = requestsWhere(m, (_, s) => s === 499) - requestsWhere(before, (_, s) => s === 499);
  const counted = generationRequests(m) - generationRequests(before);
  const cancelled = m.strata_engine_requests_cancelled_total - before.strata_engine_requests_cancelled_total;
  const rss = rssBytes();
  t.diagnostic(`${name}: ${st.requests} requests in ${st.seconds.toFixed(1)} s (${st.completed} completed, ` +
    `${st.streamed} streamed, ${st.nonStreamed} non-streamed [${st.refChecked} checked against the idle greedy answer], ` +
    `${st.ollama} ollama), ${st.aborted} aborted by the client (${cancelled} sequences cancelled, ${s499} x 499), ` +
    `${st.status429} x 429, ${st.status503} x 503 (server counts ${s429} / ${s503}), ${st.tokens} tokens, RSS ${MiB(rss)} MiB`);
  assert.deepEqual(st.failures, [], `${name}: unexpected failures`);
  assert.equal(bad5xx, 0, `${name}: 5xx other than 503 in /metrics`);
  assert.ok(st.completed > 0, `${name}: some requests completed`);
  assert.equal(counted, st.requests, `${name}: the server counted ${counted} generation requests, the clients sent ${st.requests}`);
  // An abort cancels the sequence unless the server had already sent the end (the clients, 64 in
  // one process, read behind the server): never more than the aborts, and some.
  assert.ok(cancelled <= st.aborted, `${name}: ${cancelled} sequences cancelled, only ${st.aborted} streams aborted`);
  assert.ok(s499 <= st.aborted, `${name}: ${s499} x 499, only ${st.aborted} streams aborted`);
  if (st.aborted >= 10) assert.ok(cancelled > 0 && s499 > 0, `${name}: no aborted stream cancelled its sequence`);
  assert.equal(st.status429, s429, `${name}: 429s the clients saw = 429s the server counted`);
  return { rss, metrics: m };
}

test('64 concurrent clients, two rounds: idle afterwards, no 5xx, stable RSS', { timeout: 120000 }, async (t) => {
  assert.ok(PID > 0, 'STRATA_PID is set');
  const rss0 = rssBytes();
  const ref = await openai.chat.completions.create(refParams);
  const reference = ref.choices[0].message.content;
  assert.ok(reference.length > 0);

  let before = await metrics();
  const w = await round(1, WARMUP_MS, reference);
  const warm = await settle(t, 'warm-up', w, before);
  before = warm.metrics;
  const r1 = await round(2, ROUND_MS, reference);
  const s1 = await settle(t, 'round 1', r1, before);
  const r2 = await round(3, ROUND_MS, reference);
  const s2 = await settle(t, 'round 2', r2, s1.metrics);
  t.diagnostic(`RSS: start ${MiB(rss0)} MiB, after warm-up ${MiB(warm.rss)} MiB, after round 1 ${MiB(s1.rss)} MiB, ` +
    `after round 2 ${MiB(s2.rss)} MiB`);
  const growth = s2.rss - s1.rss;
  assert.ok(growth < RSS_SLACK || growth < 0.25 * s1.rss,
    `RSS grew ${MiB(growth)} MiB from round 1's end to round 2's (${MiB(s1.rss)} -> ${MiB(s2.rss)} MiB)`);
  assert.ok(r1.aborted > 0 && r2.aborted > 0, 'both rounds aborted some streams');
  assert.ok(r1.nonStreamed > 0 && r2.nonStreamed > 0, 'both rounds sent non-streamed requests');
});
