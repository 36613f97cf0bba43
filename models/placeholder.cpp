// Placeholder until the architectures land.
