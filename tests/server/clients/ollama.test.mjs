// The official `ollama` npm client against `strata serve`: generate and chat (streamed and not),
// list (tags), show, ps, version, and the API key it must send as a header.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import { BASE, KEY, MODEL, MODEL_BYTES, auth, pickStop } from './lib.mjs';

const ollama = new Ollama({ host: BASE, headers: auth });
// Greedy and without the repeat penalty Ollama's defaults bring, so runs can be compared.
const options = { temperature: 0, repeat_penalty: 1, num_predict: 20 };
const messages = [{ role: 'user', content: 'Tell me about mixtures of experts.' }];

// Consumes a streamed answer; `pick` gets a line's text. Returns the text, the lines and the last.
async function collect(it, pick) {
  let text = '', lines = 0, last = null;
  for await (const part of it) {
    ++lines;
    assert.equal(last, null, 'nothing after done');
    assert.equal(part.model, MODEL);
    text += pick(part);
    if (part.done) last = part;
  }
  assert.ok(last, 'a final done line');
  return { text, lines, last };
}

function checkDone(r, numPredict) {
  assert.equal(r.done, true);
  assert.ok(r.prompt_eval_count > 0, 'prompt_eval_count > 0');
  assert.ok(['length', 'stop'].includes(r.done_reason), `done_reason ${r.done_reason}`);
  if (r.done_reason === 'length') assert.equal(r.eval_count, numPredict);
  else assert.ok(r.eval_count < numPredict);
  assert.ok(r.total_duration > 0 && r.total_duration >= r.eval_duration);
  assert.match(r.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
}

test('version', async () => {
  const v = await ollama.version();
  assert.equal(typeof v.version, 'string');
  assert.match(v.version, /^\d+\.\d+\.\d+/);
});

test('list (tags), show, ps', async () => {
  const tags = await ollama.list();
  assert.equal(tags.models.length, 1);
  const m = tags.models[0];
  assert.equal(m.name, MODEL);
  assert.equal(m.model, MODEL);
  if (MODEL_BYTES) assert.equal(m.size, MODEL_BYTES, 'size = the GGUF file size');
  assert.equal(m.details.format, 'gguf');
  assert.ok(m.details.family.length > 0);
  assert.ok(!Number.isNaN(Date.parse(m.modified_at)));

  const show = await ollama.show({ model: MODEL });
  assert.equal(show.details.format, 'gguf');
  assert.equal(show.details.family, m.details.family);
  assert.ok(show.template.length > 0, 'the chat template in use');
  assert.equal(typeof show.model_info, 'object');
  assert.ok(Object.keys(show.model_info).length > 0);
  assert.ok(show.capabilities.includes('completion'));
  await assert.rejects(ollama.show({ model: 'no-such-model' }), (e) => e.name === 'ResponseError' && e.status_code === 404);

  const ps = await ollama.ps();
  assert.deepEqual(ps.models.map((x) => x.name), [MODEL]);
  assert.equal(ps.models[0].size, m.size);
});

test('generate: non-streamed and streamed agree', async () => {
  const prompt = 'Why is the sky blue?';
  const r = await ollama.generate({ model: MODEL, prompt, options });
  assert.equal(r.model, MODEL);
  assert.ok(r.response.length > 0);
  checkDone(r, options.num_predict);
  const again = await ollama.generate({ model: MODEL, prompt, options, stream: false });
  assert.equal(again.response, r.response, 'greedy is deterministic');

  const s = await collect(await ollama.generate({ model: MODEL, prompt, options, stream: true }), (p) => p.response);
  assert.equal(s.text, r.response);
  checkDone(s.last, options.num_predict);
  assert.equal(s.last.eval_count, r.eval_count);
  assert.equal(s.last.prompt_eval_count, r.prompt_eval_count);
  assert.ok(s.lines >= 3 && s.lines <= s.last.eval_count + 1, `lines ${s.lines}: one per token at most, plus done`);

  // A seed makes sampled answers reproducible here too.
  const seeded = { temperature: 0.8, num_predict: 24, seed: 42 };
  const a = await ollama.generate({ model: MODEL, prompt, options: seeded });
  const b = await ollama.generate({ model: MODEL, prompt, options: seeded });
  const c = await ollama.generate({ model: MODEL, prompt, options: { ...seeded, seed: 43 } });
  assert.equal(a.response, b.response);
  assert.notEqual(a.response, c.response);
});

test('generate: num_predict and a stop option', async () => {
  const prompt = 'Count to ten.';
  const long = await ollama.generate({ model: MODEL, prompt, options: { ...options, num_predict: 40 } });
  const stop = pickStop(long.response);
  assert.ok(stop, `no usable stop string in ${JSON.stringify(long.response)}`);
  const r = await ollama.generate({ model: MODEL, prompt, options: { ...options, num_predict: 40, stop: [stop] } });
  assert.equal(r.done_reason, 'stop');
  assert.equal(r.response, long.response.slice(0, long.response.indexOf(stop)));
  assert.ok(r.eval_count < 40);
});

test('chat: non-streamed and streamed agree', async () => {
  const r = await ollama.chat({ model: MODEL, messages, options });
  assert.equal(r.message.role, 'assistant');
  assert.ok(r.message.content.length > 0);
  checkDone(r, options.num_predict);

  const s = await collect(await ollama.chat({ model: MODEL, messages, options, stream: true }), (p) => {
    assert.equal(p.message.role, 'assistant');
    return p.message.content;
  });
  assert.equal(s.text, r.message.content);
  checkDone(s.last, options.num_predict);
  assert.equal(s.last.eval_count, r.eval_count);

  // A longer conversation has a longer prompt.
  const two = await ollama.chat({
    model: MODEL, options,
    messages: [...messages, { role: 'assistant', content: r.message.content }, { role: 'user', content: 'More.' }],
  });
  assert.ok(two.prompt_eval_count > r.prompt_eval_count);
});

test('an aborted stream ends cleanly and the server keeps answering', async () => {
  const it = await ollama.generate({ model: MODEL, prompt: 'abort me', options: { ...options, num_predict: 400 }, stream: true });
  let n = 0;
  await assert.rejects((async () => {
    for await (const part of it) {
      if (++n === 3) it.abort();
      assert.ok(!part.done, 'aborted before the end');
    }
  })(), (e) => e.name === 'AbortError');
  const r = await ollama.generate({ model: MODEL, prompt: 'still there?', options });
  assert.ok(r.response.length > 0);
});

test('API key: missing or wrong is refused with 401', async () => {
  const none = new Ollama({ host: BASE });
  await assert.rejects(none.list(), (e) => e.name === 'ResponseError' && e.status_code === 401);
  const wrong = new Ollama({ host: BASE, headers: { Authorization: `Bearer ${KEY}x` } });
  await assert.rejects(wrong.generate({ model: MODEL, prompt: 'hi', options }), (e) => e.status_code === 401);
  await assert.rejects(wrong.chat({ model: MODEL, messages, options, stream: true }), (e) => e.status_code === 401);
  await assert.rejects(wrong.show({ model: MODEL }), (e) => e.status_code === 401);
});
