// The official `openai` npm client against `strata serve`: models, chat and text completions,
// streamed and not, usage, finish reasons, stop strings, seeded sampling and the API key.
// The model has random weights, so texts are compared among runs, never to fixed strings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { AuthenticationError, NotFoundError, BadRequestError } from 'openai';
import { BASE, KEY, MODEL, http, metrics, requestsWhere, waitIdle, pickStop } from './lib.mjs';

const client = new OpenAI({ baseURL: `${BASE}/v1`, apiKey: KEY, maxRetries: 0, timeout: 30000 });
const messages = [
  { role: 'system', content: 'You are a test.' },
  { role: 'user', content: 'Say something long about streaming weights.' },
];
// ignore_eos (an extension the server takes) keeps a random model from ending early, so that
// "length" and the token counts are certain.
const greedy = { model: MODEL, temperature: 0, ignore_eos: true };

// Text and token count of a streamed chat completion; every chunk checked on the way.
async function streamChat(params) {
  const stream = await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
  let text = '', finish = null, usage = null, tokens = 0, chunks = 0, role = null;
  for await (const chunk of stream) {
    ++chunks;
    assert.equal(chunk.object, 'chat.completion.chunk');
    assert.equal(chunk.model, MODEL);
    if (chunk.usage) {
      assert.equal(chunk.choices.length, 0, 'the usage chunk has no choices');
      assert.equal(usage, null, 'one usage chunk');
      usage = chunk.usage;
      continue;
    }
    assert.equal(chunk.choices.length, 1);
    const c = chunk.choices[0];
    assert.equal(finish, null, 'nothing but usage after finish_reason');
    if (c.delta.role) role = c.delta.role;
    if (c.delta.content) text += c.delta.content;
    if (c.logprobs?.content) tokens += c.logprobs.content.length;
    if (c.finish_reason) finish = c.finish_reason;
  }
  assert.equal(role, 'assistant');
  return { text, finish, usage, tokens, chunks };
}

async function streamCompletion(params) {
  const stream = await client.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
  let text = '', finish = null, usage = null, tokens = 0;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'text_completion');
    if (chunk.usage) {
      usage = chunk.usage;
      continue;
    }
    const c = chunk.choices[0];
    assert.equal(finish, null, 'nothing but usage after finish_reason');
    text += c.text;
    if (c.logprobs?.tokens) tokens += c.logprobs.tokens.length;
    if (c.finish_reason) finish = c.finish_reason;
  }
  return { text, finish, usage, tokens };
}

function checkUsage(u, completionTokens) {
  assert.ok(u, 'usage present');
  assert.ok(u.prompt_tokens > 0, `prompt_tokens ${u.prompt_tokens} > 0`);
  assert.equal(u.completion_tokens, completionTokens);
  assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
}

test('models: list and retrieve', async () => {
  const page = await client.models.list();
  const ids = page.data.map((m) => m.id);
  assert.deepEqual(ids, [MODEL]);
  assert.equal(page.data[0].object, 'model');
  assert.equal(typeof page.data[0].created, 'number');
  const m = await client.models.retrieve(MODEL);
  assert.equal(m.id, MODEL);
  assert.equal(m.owned_by, page.data[0].owned_by);
  await assert.rejects(client.models.retrieve('no-such-model'), (e) => e instanceof NotFoundError && e.status === 404);
});

test('chat: greedy, non-streamed and streamed agree; usage; finish_reason length', async () => {
  const max_tokens = 24;
  const r = await client.chat.completions.create({ ...greedy, messages, max_tokens, logprobs: true });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.model, MODEL);
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.choices.length, 1);
  const c = r.choices[0];
  assert.equal(c.finish_reason, 'length');
  assert.equal(c.message.role, 'assistant');
  assert.ok(c.message.content.length > 0, 'some text');
  assert.equal(c.logprobs.content.length, max_tokens, 'one logprob per token');
  checkUsage(r.usage, max_tokens);

  const again = await client.chat.completions.create({ ...greedy, messages, max_tokens });
  assert.equal(again.choices[0].message.content, c.message.content, 'greedy is deterministic');

  const s = await streamChat({ ...greedy, messages, max_tokens, logprobs: true });
  assert.equal(s.text, c.message.content, 'streamed text = non-streamed text');
  assert.equal(s.finish, 'length');
  assert.equal(s.tokens, max_tokens, 'streamed tokens (logprob entries) = max_tokens');
  checkUsage(s.usage, s.tokens);
  assert.equal(s.usage.prompt_tokens, r.usage.prompt_tokens);
  assert.ok(s.chunks >= 3, 'several chunks, not one blob');

  // A longer answer starts with the shorter one (same prompt, greedy), but for the end: a cut
  // in the middle of a UTF-8 character releases the held-back bytes as U+FFFD.
  const longer = await client.chat.completions.create({ ...greedy, messages, max_tokens: 40 });
  assert.ok(longer.choices[0].message.content.startsWith(c.message.content.replace(/\uFFFD+$/u, '')));
  assert.equal(longer.usage.completion_tokens, 40);
});

test('completions: greedy, non-streamed and streamed agree; usage; default max_tokens 16', async () => {
  const prompt = 'The quick brown fox jumps over';
  const r = await client.completions.create({ ...greedy, prompt, max_tokens: 20, logprobs: 2 });
  assert.equal(r.object, 'text_completion');
  assert.match(r.id, /^cmpl-/);
  const c = r.choices[0];
  assert.equal(c.finish_reason, 'length');
  assert.ok(c.text.length > 0);
  assert.equal(c.logprobs.tokens.length, 20);
  assert.ok(c.logprobs.top_logprobs.every((t) => Object.keys(t).length >= 1 && Object.keys(t).length <= 2));
  checkUsage(r.usage, 20);

  const s = await streamCompletion({ ...greedy, prompt, max_tokens: 20, logprobs: 0 });
  assert.equal(s.text, c.text);
  assert.equal(s.finish, 'length');
  assert.equal(s.tokens, 20);
  checkUsage(s.usage, 20);
  assert.equal(s.usage.prompt_tokens, r.usage.prompt_tokens);

  const d = await client.completions.create({ ...greedy, prompt });
  assert.equal(d.usage.completion_tokens, 16, 'OpenAI default max_tokens for completions');
  assert.ok(c.text.startsWith(d.choices[0].text.replace(/\uFFFD+$/u, '')));
});

test('stop string: the answer is cut right before it, streamed and not', async () => {
  const full = (await client.chat.completions.create({ ...greedy, messages, max_tokens: 48 })).choices[0].message.content;
  const stop = pickStop(full);
  assert.ok(stop, `no usable stop string in ${JSON.stringify(full)}`);
  const expected = full.slice(0, full.indexOf(stop));
  assert.ok(expected.length > 0);

  const r = await client.chat.completions.create({ ...greedy, messages, max_tokens: 48, stop: [stop] });
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.choices[0].message.content, expected);
  assert.ok(r.usage.completion_tokens < 48);
  assert.ok(r.usage.completion_tokens > 0);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);

  const s = await streamChat({ ...greedy, messages, max_tokens: 48, stop });
  assert.equal(s.finish, 'stop');
  assert.equal(s.text, expected);
  assert.equal(s.usage.completion_tokens, r.usage.completion_tokens);

  // Completions too.
  const prompt = 'Once upon a time';
  const cfull = (await client.completions.create({ ...greedy, prompt, max_tokens: 48 })).choices[0].text;
  const cstop = pickStop(cfull);
  assert.ok(cstop, `no usable stop string in ${JSON.stringify(cfull)}`);
  const cr = await client.completions.create({ ...greedy, prompt, max_tokens: 48, stop: cstop });
  assert.equal(cr.choices[0].finish_reason, 'stop');
  assert.equal(cr.choices[0].text, cfull.slice(0, cfull.indexOf(cstop)));
  const cs = await streamCompletion({ ...greedy, prompt, max_tokens: 48, stop: [cstop, '\u0000never'] });
  assert.equal(cs.finish, 'stop');
  assert.equal(cs.text, cr.choices[0].text);
});

test('seeded sampling is reproducible; another seed differs', async () => {
  const p = { model: MODEL, messages, max_tokens: 48, temperature: 0.8, ignore_eos: true };
  const a = await client.chat.completions.create({ ...p, seed: 1234 });
  const b = await client.chat.completions.create({ ...p, seed: 1234 });
  assert.equal(a.choices[0].message.content, b.choices[0].message.content, 'same seed, same text');
  const s = await streamChat({ ...p, seed: 1234 });
  assert.equal(s.text, a.choices[0].message.content, 'same seed streamed, same text');
  const c = await client.chat.completions.create({ ...p, seed: 98765 });
  assert.notEqual(c.choices[0].message.content, a.choices[0].message.content, 'another seed, another text');
  const g = await client.chat.completions.create({ ...greedy, messages, max_tokens: 48 });
  assert.notEqual(a.choices[0].message.content, g.choices[0].message.content, 'sampling at 0.8 is not greedy');

  const q = { model: MODEL, prompt: 'Seeds:', max_tokens: 32, temperature: 0.8, ignore_eos: true };
  const x = await client.completions.create({ ...q, seed: 7 });
  const y = await client.completions.create({ ...q, seed: 7 });
  const z = await client.completions.create({ ...q, seed: 8 });
  assert.equal(x.choices[0].text, y.choices[0].text);
  assert.notEqual(x.choices[0].text, z.choices[0].text);
});

test('API key: a wrong key and a missing key are refused with 401', async () => {
  const wrong = new OpenAI({ baseURL: `${BASE}/v1`, apiKey: `${KEY}-wrong`, maxRetries: 0 });
  await assert.rejects(wrong.models.list(), (e) => e instanceof AuthenticationError && e.status === 401);
  await assert.rejects(wrong.chat.completions.create({ ...greedy, messages, max_tokens: 4 }),
    (e) => e instanceof AuthenticationError && e.status === 401);
  await assert.rejects(wrong.completions.create({ ...greedy, prompt: 'x', max_tokens: 4, stream: true }),
    (e) => e instanceof AuthenticationError && e.status === 401);

  // No Authorization header at all (a null default header removes the client's own).
  const none = new OpenAI({ baseURL: `${BASE}/v1`, apiKey: 'unused', maxRetries: 0, defaultHeaders: { Authorization: null } });
  await assert.rejects(none.models.list(), (e) => e instanceof AuthenticationError && e.status === 401);
  const raw = await http('/v1/models', { headers: {} });
  assert.equal(raw.status, 401);
  assert.equal(typeof raw.json?.error?.message, 'string');
  const basic = await http('/v1/models', { headers: { Authorization: `Basic ${KEY}` } });
  assert.equal(basic.status, 401);
  // /health needs no key.
  const h = await http('/health', { headers: {} });
  assert.equal(h.status, 200);
  assert.equal(h.json.status, 'ok');
});

test('bad requests come back as the client\'s BadRequestError', async () => {
  await assert.rejects(client.chat.completions.create({ model: MODEL, messages, max_tokens: 4, n: 2 }),
    (e) => e instanceof BadRequestError && e.status === 400);
  await assert.rejects(client.chat.completions.create({ model: MODEL, messages, max_tokens: 4, temperature: 5 }),
    (e) => e instanceof BadRequestError && e.status === 400);
  await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages, max_tokens: 4 }),
    (e) => e instanceof NotFoundError && e.status === 404);
});

test('an aborted stream cancels its sequence (and counts as 499)', async () => {
  const before = await waitIdle();
  assert.equal(before.strata_active_sequences, 0);
  const ac = new AbortController();
  const stream = await client.chat.completions.create({ ...greedy, messages, max_tokens: 1500, stream: true }, { signal: ac.signal });
  let chunks = 0, finish = null;
  for await (const c of stream) {
    if (c.choices[0]?.finish_reason) finish = c.choices[0].finish_reason;
    if (c.choices[0]?.delta?.content && ++chunks === 2) {
      ac.abort();
      break;
    }
  }
  assert.equal(finish, null);
  const after = await waitIdle();
  assert.equal(after.strata_active_sequences, 0, 'the sequence stopped');
  assert.equal(after.strata_engine_requests_cancelled_total - before.strata_engine_requests_cancelled_total, 1);
  assert.ok(after.strata_generated_tokens_total - before.strata_generated_tokens_total < 1500, 'it did not run to max_tokens');
  let m = after;
  const n499 = (x) => requestsWhere(x, (ep, s) => ep === '/v1/chat/completions' && s === 499);
  for (let i = 0; i < 20 && n499(m) === n499(before); ++i) m = await metrics();
  assert.equal(n499(m) - n499(before), 1);
});
