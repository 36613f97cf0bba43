// Placeholder until the tokenizers land.
