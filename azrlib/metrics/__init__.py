"""Measurements that read checkpoints, samples and result files (pass@k, entropy, update sparsity,
question difficulty). They sit above the trainer: they may reuse its small pure helpers (the
sampled-token entropy of engine log-probs) but never run or configure it; a study that samples is
given its sampler."""
