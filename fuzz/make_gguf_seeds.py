#!/usr/bin/env python3
"""Writes the GGUF seeds of fuzz_gguf: the smallest models Model::load accepts (a dense llama
with a SentencePiece vocab, a qwen3moe with experts and a byte-level BPE vocab), so the fuzzer
starts from files that reach tensor binding and the weight read instead of the magic check.
The reference models in ../shared are megabytes; seeds this small mutate thousands of times a
second. Usage: make_gguf_seeds.py OUT_DIR"""
import struct
import sys

U32, F32, BOOL, STRING, ARRAY = 4, 6, 7, 8, 9


def s(x):
    b = x.encode()
    return struct.pack('<Q', len(b)) + b


def kv(key, t, v):
    out = s(key) + struct.pack('<I', t)
    if t == U32:
        out += struct.pack('<I', v)
    elif t == F32:
        out += struct.pack('<f', v)
    elif t == BOOL:
        out += struct.pack('<B', v)
    elif t == STRING:
        out += s(v)
    elif t == ARRAY:
        et, items = v
        out += struct.pack('<IQ', et, len(items))
        for it in items:
            out += s(it) if et == STRING else struct.pack({U32: '<i', F32: '<f'}[et], it)
    return out


def gguf(meta, tensors):
    """tensors: (name, shape) in ggml order, all F32, filled with small values."""
    head = b'GGUF' + struct.pack('<IQQ', 3, len(tensors), len(meta))
    head += b''.join(kv(*m) for m in meta)
    data = b''
    for name, shape in tensors:
        n = 1
        for d in shape:
            n *= d
        head += s(name) + struct.pack('<I', len(shape)) + b''.join(struct.pack('<Q', d) for d in shape)
        head += struct.pack('<IQ', 0, len(data))
        data += b''.join(struct.pack('<f', 0.01 * ((i % 7) - 3)) for i in range(n))
        data += b'\0' * (-len(data) % 32)
    head += b'\0' * (-len(head) % 32)
    return head + data


def llama(arch, vocab, extra_meta, layer_tensors, E=8, H=2, V=None):
    V = len(vocab[0])
    meta = [('general.architecture', STRING, arch), ('general.name', STRING, 'seed'),
            (f'{arch}.block_count', U32, 1), (f'{arch}.embedding_length', U32, E),
            (f'{arch}.attention.head_count', U32, H), (f'{arch}.context_length', U32, 64),
            (f'{arch}.attention.layer_norm_rms_epsilon', F32, 1e-5)] + extra_meta + vocab[1]
    t = [('token_embd.weight', [E, V]), ('output_norm.weight', [E])]
    t += [(f'blk.0.{n}', sh) for n, sh in layer_tensors]
    return gguf(meta, t)


def main(out):
    E, FF = 8, 16
    spm_tokens = ['<unk>', '<s>', '</s>', '\u2581', 'a', 'b', '\u2581a', '\u2581b', 'ab', '<0x0A>']
    spm = (spm_tokens, [('tokenizer.ggml.model', STRING, 'llama'),
                        ('tokenizer.ggml.tokens', ARRAY, (STRING, spm_tokens)),
                        ('tokenizer.ggml.scores', ARRAY, (F32, [0.0, 0.0, 0.0] + [-float(i) for i in range(7)])),
                        ('tokenizer.ggml.token_type', ARRAY, (U32, [2, 3, 3, 1, 1, 1, 1, 1, 1, 6])),
                        ('tokenizer.ggml.bos_token_id', U32, 1), ('tokenizer.ggml.eos_token_id', U32, 2),
                        ('tokenizer.chat_template', STRING,
                         "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}")])
    dense = [('attn_norm.weight', [E]), ('attn_q.weight', [E, E]), ('attn_k.weight', [E, E]),
             ('attn_v.weight', [E, E]), ('attn_output.weight', [E, E]), ('ffn_norm.weight', [E]),
             ('ffn_gate.weight', [E, FF]), ('ffn_up.weight', [E, FF]), ('ffn_down.weight', [FF, E])]
    with open(f'{out}/llama-spm.gguf', 'wb') as f:
        f.write(llama('llama', spm, [('llama.feed_forward_length', U32, FF)], dense))

    bpe_tokens = ['!', 'a', 'b', '\u0120', 'ab', '\u0120a', '<|endoftext|>']
    bpe = (bpe_tokens, [('tokenizer.ggml.model', STRING, 'gpt2'), ('tokenizer.ggml.pre', STRING, 'qwen2'),
                        ('tokenizer.ggml.tokens', ARRAY, (STRING, bpe_tokens)),
                        ('tokenizer.ggml.token_type', ARRAY, (U32, [1, 1, 1, 1, 1, 1, 3])),
                        ('tokenizer.ggml.merges', ARRAY, (STRING, ['a b', '\u0120 a'])),
                        ('tokenizer.ggml.eos_token_id', U32, 6)])
    NX, FX, HD = 4, 8, 4
    moe = [('attn_norm.weight', [E]), ('attn_q.weight', [E, E]), ('attn_k.weight', [E, E]),
           ('attn_v.weight', [E, E]), ('attn_output.weight', [E, E]), ('ffn_norm.weight', [E]),
           ('attn_q_norm.weight', [HD]), ('attn_k_norm.weight', [HD]),
           ('ffn_gate_inp.weight', [E, NX]), ('ffn_gate_exps.weight', [E, FX, NX]),
           ('ffn_up_exps.weight', [E, FX, NX]), ('ffn_down_exps.weight', [FX, E, NX])]
    with open(f'{out}/qwen3moe-bpe.gguf', 'wb') as f:
        f.write(llama('qwen3moe', bpe, [('qwen3moe.expert_count', U32, NX), ('qwen3moe.expert_used_count', U32, 2),
                                        ('qwen3moe.expert_feed_forward_length', U32, FX),
                                        ('qwen3moe.attention.key_length', U32, HD)], moe))


if __name__ == '__main__':
    main(sys.argv[1])
