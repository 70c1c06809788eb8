"""Measurements that read checkpoints and result files; they know nothing of the trainer."""
