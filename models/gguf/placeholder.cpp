// Placeholder until the GGUF reader lands.
