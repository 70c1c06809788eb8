"""Entropy on fixed prompts (against per-position loops in plain Python, and the sampled-token
estimate against the full entropy on tokens sampled from the model) and sparsity per optimizer
step (against a brute-force count on small safetensors checkpoints with known changes)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from azrlib.metrics.rq_checkpoints import (
    budget_statement,
    checkpoint_entropy,
    fixed_prompt_entropy,
    response_entropies,
    sparsity_curve,
)
from azrlib.rollout.base import Completion

VOCAB = 7


class ToyLM(torch.nn.Module):
    """Logits at position t depend on tokens t and t-1 (so teacher forcing order matters)."""

    def __init__(self, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.a = torch.nn.Parameter(torch.randn(VOCAB, VOCAB, generator=g) * 2)
        self.b = torch.nn.Parameter(torch.randn(VOCAB, VOCAB, generator=g))

    def forward(self, input_ids):
        prev = torch.roll(input_ids, 1, dims=1)
        prev[:, 0] = 0
        return self.a[input_ids] + self.b[prev]


def _python_entropy_and_nll(logits_row, token, temperature):
    z = [float(v) / temperature for v in logits_row]
    m = max(z)
    log_norm = m + math.log(sum(math.exp(v - m) for v in z))
    logp = [v - log_norm for v in z]
    return -sum(math.exp(lp) * lp for lp in logp), -logp[token]


def test_response_entropies_match_python_loops():
    model = ToyLM()
    prompts = [[1, 2, 3], [4], [5, 6]]
    responses = [[0, 6, 2], [3], []]
    temperature = 0.7
    got = response_entropies(model, prompts, responses, temperature, batch_size=2)  # pads the short one
    for i, (p, r) in enumerate(zip(prompts, responses)):
        if not r:
            assert math.isnan(got["full"][i]) and math.isnan(got["sampled"][i])
            continue
        seq = p + r
        logits = model(torch.tensor([seq]))[0]
        pairs = [_python_entropy_and_nll(logits[len(p) - 1 + t].tolist(), r[t], temperature) for t in range(len(r))]
        assert got["full"][i] == pytest.approx(np.mean([h for h, _ in pairs]), rel=1e-5)
        assert got["sampled"][i] == pytest.approx(np.mean([n for _, n in pairs]), rel=1e-5)
    with pytest.raises(ValueError, match="empty"):
        response_entropies(model, [[]], [[1]])


class ToySampler:
    """Samples from ToyLM itself at the requested temperature (so the sampled-token estimate is
    unbiased for the full entropy) and records the call."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def generate(self, prompts, n=1, temperature=1.0, top_p=1.0, max_new_tokens=4, stop=None, seed=None):
        self.calls.append({"n": n, "temperature": temperature, "top_p": top_p})
        g = torch.Generator().manual_seed(seed or 0)
        out = []
        for i, text in enumerate(prompts):
            ids = [int(ch) for ch in text]
            seq = torch.tensor([ids] * n)
            for _ in range(max_new_tokens):
                logits = self.model(seq)[:, -1] / temperature
                seq = torch.cat([seq, torch.multinomial(torch.softmax(logits, -1), 1, generator=g)], dim=1)
            comps = []
            for j in range(n):
                toks = seq[j, len(ids):].tolist()
                comps.append(Completion(i, j, toks, "", [0.0] * len(toks), "length", prompt_token_ids=ids))
            out.append(comps)
        return out


def test_fixed_prompt_entropy_per_prompt_and_estimators_agree_in_expectation():
    model = ToyLM(1)
    sampler = ToySampler(model)
    with torch.no_grad():
        res = fixed_prompt_entropy(sampler, model, ["12", "3"], n=300, temperature=1.0, max_new_tokens=3, seed=5)
    assert sampler.calls == [{"n": 300, "temperature": 1.0, "top_p": 1.0}]
    assert res["full"].shape == (2,) and np.all(res["length"] == 3)
    # E[-log pi(y)] = H when y ~ pi: the two estimators agree up to Monte Carlo error.
    assert res["sampled"] == pytest.approx(res["full"], abs=0.08)


def test_checkpoint_entropy_on_a_real_model_agrees_with_the_samplers_own_logprobs(tmp_path):
    """At T = 1 the teacher-forced -log pi(y_t) must equal the sampler's generation-time log-probs
    (raw T = 1 logits) for the same tokens: an independent path through the model, with right
    padding in the teacher-forced batch and left padding in the sampler's."""
    from azrlib.rollout.hf import HFSampler
    from tiny_model import build_tiny_checkpoint

    path = build_tiny_checkpoint(tmp_path / "m")
    sampler = HFSampler(path, num_threads=1)
    prompts = ["def f(x):\n    return x + 3", "assert f(", "print(f('abc'), 12)\n    for i in"]
    got = checkpoint_entropy(path, prompts, n=3, temperature=1.0, max_new_tokens=12, seed=3, num_threads=1,
                             make_sampler=lambda p: sampler)
    samples = sampler.generate(prompts, n=3, temperature=1.0, top_p=1.0, max_new_tokens=12, seed=3)
    for i, completions in enumerate(samples):
        per_response = [-np.mean(c.logprobs) for c in completions if c.token_ids]
        assert got["sampled"][i] == pytest.approx(np.mean(per_response), abs=1e-4)
        assert got["length"][i] == pytest.approx(np.mean([len(c.token_ids) for c in completions]))
    assert np.all(got["full"] > 0) and np.all(np.isfinite(got["full"]))


def _write(directory, tensors):
    directory.mkdir()
    save_file(tensors, str(directory / "model.safetensors"))
    return directory


def test_sparsity_curve_against_brute_force(tmp_path):
    g = torch.Generator().manual_seed(0)
    base = {"layers.0.w": torch.randn(40, 50, generator=g) + 1.0, "emb.weight": torch.randn(30, 8, generator=g)}
    base_dir = _write(tmp_path / "base", base)
    ckpts, tuned_by_step = {}, {}
    for step, (tiny, big) in {10: (50, 5), 20: (300, 40)}.items():
        tuned = {k: v.clone() for k, v in base.items()}
        flat = tuned["layers.0.w"].view(-1)
        flat[:tiny] += 1e-7  # invisible in bf16 (and under atol) near |w| ~ 1
        flat[tiny:tiny + big] += 1e-2  # visible everywhere
        tuned_by_step[step] = tuned
        ckpts[step] = _write(tmp_path / f"step{step}", tuned)
    rows = sparsity_curve(base_dir, ckpts, atol=1e-5, workers=1)
    assert [(r["step"], r["dtype"]) for r in rows] == [(10, "bf16"), (10, "fp32"), (20, "bf16"), (20, "fp32")]
    for r in rows:
        tuned = tuned_by_step[r["step"]]
        total = sum(v.numel() for v in base.values())
        if r["dtype"] == "bf16":
            same = sum(int((base[k].bfloat16() == tuned[k].bfloat16()).sum()) for k in base)
            within = sum(int(((base[k].bfloat16().float() - tuned[k].bfloat16().float()).abs() <= 1e-5).sum()) for k in base)
        else:
            same = sum(int((base[k] == tuned[k]).sum()) for k in base)
            within = sum(int(((base[k] - tuned[k]).abs() <= 1e-5).sum()) for k in base)
        assert r["n_params"] == total
        assert r["sparsity"] == pytest.approx(same / total)
        assert r["sparsity_atol"] == pytest.approx(within / total)
    fp32 = {r["step"]: r for r in rows if r["dtype"] == "fp32"}
    bf16 = {r["step"]: r for r in rows if r["dtype"] == "bf16"}
    assert bf16[20]["sparsity"] > fp32[20]["sparsity"]  # the 1e-7 updates vanish in bf16


def test_budget_statement():
    ok = budget_statement({"selfplay": {"optimizer_steps": 40, "tokens": 123456}, "rlvr": {"optimizer_steps": 40}})
    assert ok["matched"] and "selfplay: 40 optimizer steps, 123,456 trained tokens" in ok["statement"]
    bad = budget_statement({"selfplay": {"optimizer_steps": 80}, "sft": {"optimizer_steps": 40}})
    assert not bad["matched"] and "NOT matched" in bad["statement"]
    with pytest.raises(ValueError, match="optimizer_steps"):
        budget_statement({"x": {"tokens": 5}})
