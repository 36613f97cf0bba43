// What the client tests share: the server run.sh started (from the environment), raw HTTP
// helpers for what the SDKs hide (status codes, /metrics, /health) and the server's RSS.
import { readFileSync } from 'node:fs';

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these tests through tests/server/clients/run.sh`);
  return v;
}

export const BASE = need('STRATA_URL');          // http://127.0.0.1:PORT
export const KEY = need('STRATA_API_KEY');
export const MODEL = need('STRATA_MODEL');       // the id the server reports (file name without .gguf)
export const MODEL_BYTES = Number(process.env.STRATA_MODEL_BYTES || 0);
export const PID = Number(process.env.STRATA_PID || 0);

export const auth = { Authorization: `Bearer ${KEY}` };

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// fetch with the key, a timeout, and the body read (JSON when it parses).
export async function http(path, { method = 'GET', body, headers = auth, timeoutMs = 15000 } = {}) {
  const res = await fetch(BASE + path, {
    method,
    headers: body === undefined ? headers : { 'Content-Type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json };
}

// /metrics as { 'name{labels}': value }.
export async function metrics() {
  const r = await http('/metrics');
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}: ${r.text}`);
  const out = {};
  for (const line of r.text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

// Sum of strata_requests_total over the labels `pred(endpoint, status)` accepts.
export function requestsWhere(m, pred) {
  let n = 0;
  for (const [k, v] of Object.entries(m)) {
    const g = /^strata_requests_total\{endpoint="(.*)",status="(\d+)"\}$/.exec(k);
    if (g && pred(g[1], Number(g[2]))) n += v;
  }
  return n;
}

// Polls /metrics until no sequence runs or waits (up to `ms`); returns the last scrape.
export async function waitIdle(ms = 5000) {
  const until = Date.now() + ms;
  let m;
  do {
    m = await metrics();
    if (m.strata_active_sequences === 0 && m.strata_queued_sequences === 0) return m;
    await sleep(100);
  } while (Date.now() < until);
  return m;
}

export function rssBytes(pid = PID) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const g = /^VmRSS:\s+(\d+) kB$/m.exec(s);
  if (!g) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(g[1]) * 1024;
}

export const MiB = (b) => (b / 1048576).toFixed(1);

// A stop string that surely occurs in `text`: `len` letters/digits found at or after the middle,
// whose first occurrence is not at the start (so the cut answer is not empty). null if none.
export function pickStop(text, len = 3) {
  const cps = Array.from(text);
  for (let start = Math.floor(cps.length / 2); start + len <= cps.length; ++start) {
    const s = cps.slice(start, start + len).join('');
    if (!/^[A-Za-z0-9]+$/.test(s)) continue;
    if (text.indexOf(s) > 0) return s;
  }
  for (let start = 1; start + len <= cps.length; ++start) {
    const s = cps.slice(start, start + len).join('');
    if (/^[A-Za-z0-9]+$/.test(s) && text.indexOf(s) > 0) return s;
  }
  return null;
}
