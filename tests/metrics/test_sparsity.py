"""Update sparsity on small synthetic safetensors checkpoints with a known set of changed entries."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from azrlib.cli import main as azr_main
from azrlib.metrics.sparsity import CheckpointError, compute_sparsity, layer_of, module_of, update_sparsity

VOCAB, HIDDEN, FFN, LAYERS = 50, 12, 20, 3


def architecture(with_lm_head: bool = True) -> dict[str, tuple[int, ...]]:
    """A miniature Qwen2-style layout (names and roles, not sizes)."""
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (VOCAB, HIDDEN)}
    for i in range(LAYERS):
        p = f"model.layers.{i}"
        for proj in ("q_proj", "k_proj", "v_proj"):
            shapes[f"{p}.self_attn.{proj}.weight"] = (HIDDEN, HIDDEN)
            shapes[f"{p}.self_attn.{proj}.bias"] = (HIDDEN,)
        shapes[f"{p}.self_attn.o_proj.weight"] = (HIDDEN, HIDDEN)
        shapes[f"{p}.mlp.gate_proj.weight"] = (FFN, HIDDEN)
        shapes[f"{p}.mlp.up_proj.weight"] = (FFN, HIDDEN)
        shapes[f"{p}.mlp.down_proj.weight"] = (HIDDEN, FFN)
        shapes[f"{p}.input_layernorm.weight"] = (HIDDEN,)
        shapes[f"{p}.post_attention_layernorm.weight"] = (HIDDEN,)
    shapes["model.norm.weight"] = (HIDDEN,)
    if with_lm_head:
        shapes["lm_head.weight"] = (VOCAB, HIDDEN)
    return shapes


def make_pair(seed: int = 0, with_lm_head: bool = True, change_fraction: float = 0.3):
    """Base weights (bf16-representable values) and a tuned copy with a known random set changed by +1."""
    gen = torch.Generator().manual_seed(seed)
    base, tuned, changed = {}, {}, {}
    for name, shape in architecture(with_lm_head).items():
        w = (torch.randn(shape, generator=gen) * 0.1).to(torch.bfloat16).float()
        mask = torch.rand(shape, generator=gen) < change_fraction
        base[name] = w
        # +1 moves any |w| < 1 to a different bf16 value, so the change is visible in every dtype.
        tuned[name] = torch.where(mask, w + 1.0, w)
        changed[name] = mask
    return base, tuned, changed


def save_checkpoint(directory: Path, tensors: dict, dtype: torch.dtype, config: dict | None = None, shards: int = 1) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.to(dtype).contiguous() for k, v in tensors.items()}
    if shards == 1:
        save_file(tensors, str(directory / "model.safetensors"))
    else:
        names = list(tensors)
        weight_map = {}
        for s in range(shards):
            shard_name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            part = names[s::shards]
            save_file({n: tensors[n] for n in part}, str(directory / shard_name))
            weight_map.update({n: shard_name for n in part})
        (directory / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    if config is not None:
        (directory / "config.json").write_text(json.dumps(config))
    return directory


def run_azr(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = azr_main(argv)
    return code, out.getvalue(), err.getvalue()


# ------------------------------------------------------------------------------- exact counts


def test_exact_counts_bf16_storage_all_modes(tmp_path):
    base, tuned, changed = make_pair()
    a = save_checkpoint(tmp_path / "base", base, torch.bfloat16)
    b = save_checkpoint(tmp_path / "tuned", tuned, torch.bfloat16)
    n_params = sum(m.numel() for m in changed.values())
    n_changed = sum(int(m.sum()) for m in changed.values())
    results = compute_sparsity(a, b, ["stored", "bf16", "fp32"])
    for mode, r in results.items():
        assert r.n_params == n_params, mode
        assert r.n_unchanged == n_params - n_changed, mode
        assert r.n_unchanged_atol == r.n_unchanged  # every change is 1.0 >> atol
        assert r.sparsity == pytest.approx(1 - n_changed / n_params)
    assert results["bf16"].stored_dtypes == {"base": ["bfloat16"], "tuned": ["bfloat16"]}


def test_sharded_matches_single_file_and_a_single_safetensors_path(tmp_path):
    base, tuned, changed = make_pair(seed=1)
    single = save_checkpoint(tmp_path / "base1", base, torch.bfloat16)
    sharded = save_checkpoint(tmp_path / "base3", base, torch.bfloat16, shards=3)
    tuned_dir = save_checkpoint(tmp_path / "tuned", tuned, torch.bfloat16, shards=2)
    expected = sum(m.numel() - int(m.sum()) for m in changed.values())
    r_single = update_sparsity(single, tuned_dir)
    r_sharded = update_sparsity(sharded, tuned_dir)
    r_file = update_sparsity(single / "model.safetensors", tuned_dir)
    assert r_single.n_unchanged == r_sharded.n_unchanged == r_file.n_unchanged == expected
    assert r_single.per_module == r_sharded.per_module


def test_chunking_and_remapping_do_not_change_counts(tmp_path):
    base, tuned, _ = make_pair(seed=2)
    a = save_checkpoint(tmp_path / "base", base, torch.float32)
    b = save_checkpoint(tmp_path / "tuned", tuned, torch.bfloat16)
    reference = compute_sparsity(a, b, ["stored", "bf16", "fp32"])
    threads_before = torch.get_num_threads()
    for workers in (1, 3):
        tiny = compute_sparsity(
            a, b, ["stored", "bf16", "fp32"], chunk_elements=7, read_elements=30, remap_bytes=64, workers=workers
        )
        for mode in reference:
            assert tiny[mode].to_json_dict() == reference[mode].to_json_dict()
    assert torch.get_num_threads() == threads_before  # the call restores torch's thread count


# ------------------------------------------------------------------------------- bf16 vs fp32, atol


def sub_ulp_pair():
    """One tensor: bf16 ulp at 1.0 is 2**-7, so updates below 2**-9 vanish when rounded to bf16.

    Entries 0-9: +2**-10 (below half a bf16 ulp, above atol 1e-5); entries 10-19: +2**-20 (below
    atol as well); entries 20-24: +0.25 (a visible change); the rest untouched.
    """
    base = torch.ones(8, 8)
    tuned = base.clone().view(-1)
    tuned[0:10] += 2.0**-10
    tuned[10:20] += 2.0**-20
    tuned[20:25] += 0.25
    return {"w.weight": base}, {"w.weight": tuned.view(8, 8)}


def test_updates_below_half_a_bf16_step_vanish_in_bf16(tmp_path):
    base, tuned = sub_ulp_pair()
    a = save_checkpoint(tmp_path / "base", base, torch.float32)
    b = save_checkpoint(tmp_path / "tuned", tuned, torch.float32)
    r = compute_sparsity(a, b, ["stored", "bf16", "fp32"])
    assert r["fp32"].n_unchanged == 64 - 25
    assert r["stored"].n_unchanged == 64 - 25
    assert r["bf16"].n_unchanged == 64 - 5  # only the +0.25 updates survive bf16 rounding
    # Tolerance 1e-5: the 2**-20 updates count as unchanged in fp32; in bf16 nothing changes further.
    assert r["fp32"].n_unchanged_atol == 64 - 15
    assert r["bf16"].n_unchanged_atol == 64 - 5
    # Direct torch computation of the same numbers.
    wa, wb = base["w.weight"], tuned["w.weight"]
    assert r["fp32"].n_unchanged == int((wa == wb).sum())
    assert r["bf16"].n_unchanged == int((wa.bfloat16() == wb.bfloat16()).sum())
    assert r["fp32"].n_unchanged_atol == int(((wa - wb).abs() <= 1e-5).sum())


def test_mixed_storage_bf16_base_fp32_tuned(tmp_path):
    """AZR's case: base stored bf16, tuned stored fp32; `stored` upcasts the base to fp32."""
    base, tuned = sub_ulp_pair()
    a = save_checkpoint(tmp_path / "base", base, torch.bfloat16)
    b = save_checkpoint(tmp_path / "tuned", tuned, torch.float32)
    r = compute_sparsity(a, b, ["stored", "bf16", "fp32"])
    assert r["stored"].n_unchanged == r["fp32"].n_unchanged == 64 - 25
    assert r["bf16"].n_unchanged == 64 - 5
    assert r["stored"].stored_dtypes == {"base": ["bfloat16"], "tuned": ["float32"]}


def test_atol_variant_against_direct_computation(tmp_path):
    gen = torch.Generator().manual_seed(3)
    base = {"a.weight": torch.randn(40, 30, generator=gen) * 1e-3, "b.bias": torch.randn(30, generator=gen)}
    tuned = {k: v + torch.randn(v.shape, generator=gen) * 1e-4 * (torch.rand(v.shape, generator=gen) < 0.5) for k, v in base.items()}
    a = save_checkpoint(tmp_path / "base", base, torch.float32)
    b = save_checkpoint(tmp_path / "tuned", tuned, torch.float32)
    for atol in (0.0, 1e-5, 1e-4, 3e-4):
        r = update_sparsity(a, b, dtype="fp32", atol=atol)
        direct_exact = sum(int((base[k] == tuned[k]).sum()) for k in base)
        direct_atol = sum(int(((base[k] - tuned[k]).abs() <= atol).sum()) for k in base)
        assert (r.n_unchanged, r.n_unchanged_atol) == (direct_exact, direct_atol), atol
        assert r.atol == atol


def test_special_values_follow_value_equality(tmp_path):
    nan, inf = float("nan"), float("inf")
    base = {"w.weight": torch.tensor([nan, inf, -inf, 0.0, -0.0, 1.0, inf, 2.0])}
    tuned = {"w.weight": torch.tensor([nan, inf, -inf, -0.0, 0.0, 1.0, -inf, nan])}
    a = save_checkpoint(tmp_path / "base", base, torch.float32)
    b = save_checkpoint(tmp_path / "tuned", tuned, torch.float32)
    r = update_sparsity(a, b, dtype="fp32")
    # Equal: inf, -inf, 0 vs -0 (twice), 1.0. NaN never equals anything.
    assert r.n_unchanged == int((base["w.weight"] == tuned["w.weight"]).sum()) == 5
    assert r.n_unchanged_atol == 5


def test_scalar_and_empty_tensors(tmp_path):
    base = {"scale": torch.tensor(2.0), "empty.weight": torch.zeros(4, 0), "w.weight": torch.ones(3)}
    tuned = {"scale": torch.tensor(3.0), "empty.weight": torch.zeros(4, 0), "w.weight": torch.tensor([1.0, 5.0, 1.0])}
    a = save_checkpoint(tmp_path / "base", base, torch.float32)
    b = save_checkpoint(tmp_path / "tuned", tuned, torch.float32)
    r = update_sparsity(a, b, dtype="stored")
    assert (r.n_params, r.n_unchanged) == (4, 2)


# ------------------------------------------------------------------------------- breakdowns


def test_per_module_and_per_layer_against_direct_computation(tmp_path):
    base, tuned, changed = make_pair(seed=4, change_fraction=0.2)
    a = save_checkpoint(tmp_path / "base", base, torch.bfloat16)
    b = save_checkpoint(tmp_path / "tuned", tuned, torch.bfloat16)
    r = update_sparsity(a, b)
    groups: dict[str, list[int]] = {}
    layers: dict[int, list[int]] = {}
    for name in base:
        unchanged = int((base[name].bfloat16() == tuned[name].bfloat16()).sum())
        for table, key in ((groups, module_of(name)), (layers, layer_of(name))):
            if key is None:
                continue
            totals = table.setdefault(key, [0, 0])
            totals[0] += unchanged
            totals[1] += base[name].numel()
    assert set(r.per_module) == {
        "embed_tokens", "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
        "input_layernorm", "post_attention_layernorm", "norm", "lm_head",
    }
    for key, (unchanged, total) in groups.items():
        assert r.per_module[key] == pytest.approx(unchanged / total), key
        assert r.per_module_n_params[key] == total
    assert sorted(r.per_layer) == list(range(LAYERS))
    for key, (unchanged, total) in layers.items():
        assert r.per_layer[key] == pytest.approx(unchanged / total), key


def test_module_and_layer_names():
    assert module_of("model.layers.3.self_attn.q_proj.weight") == "q_proj"
    assert module_of("model.layers.3.self_attn.q_proj.bias") == "q_proj"
    assert module_of("model.norm.weight") == "norm"
    assert module_of("lm_head.weight") == "lm_head"
    assert layer_of("model.layers.12.mlp.up_proj.weight") == 12
    assert layer_of("model.embed_tokens.weight") is None


# ------------------------------------------------------------------------------- tied weights


def test_tied_embeddings_counted_once(tmp_path):
    base, tuned, changed = make_pair(seed=5)
    embedding_and_rest = {k: v for k, v in changed.items() if k != "lm_head.weight"}
    n_params = sum(m.numel() for m in embedding_and_rest.values())
    n_unchanged = sum(m.numel() - int(m.sum()) for m in embedding_and_rest.values())
    tied_cfg = {"tie_word_embeddings": True}

    # (a) saved the usual tied way: no lm_head.weight in either file.
    no_head = {k: v for k, v in base.items() if k != "lm_head.weight"}
    no_head_tuned = {k: v for k, v in tuned.items() if k != "lm_head.weight"}
    a = save_checkpoint(tmp_path / "a_base", no_head, torch.bfloat16, tied_cfg)
    b = save_checkpoint(tmp_path / "a_tuned", no_head_tuned, torch.bfloat16, tied_cfg)
    r = update_sparsity(a, b)
    assert (r.n_params, r.n_unchanged, r.lm_head_skipped_as_tied) == (n_params, n_unchanged, False)

    # (b) both names stored but the config says tied: lm_head.weight is the embedding again, skipped.
    base_tied = dict(base, **{"lm_head.weight": base["model.embed_tokens.weight"].clone()})
    tuned_tied = dict(tuned, **{"lm_head.weight": tuned["model.embed_tokens.weight"].clone()})
    a = save_checkpoint(tmp_path / "b_base", base_tied, torch.bfloat16, tied_cfg)
    b = save_checkpoint(tmp_path / "b_tuned", tuned_tied, torch.bfloat16, tied_cfg)
    r = update_sparsity(a, b)
    assert (r.n_params, r.n_unchanged, r.lm_head_skipped_as_tied) == (n_params, n_unchanged, True)
    assert "lm_head" not in r.per_module

    # (c) one side saved without lm_head, the other with it, config tied: still counted once.
    a = save_checkpoint(tmp_path / "c_base", no_head, torch.bfloat16, tied_cfg)
    b = save_checkpoint(tmp_path / "c_tuned", tuned_tied, torch.bfloat16, tied_cfg)
    r = update_sparsity(a, b)
    assert (r.n_params, r.n_unchanged) == (n_params, n_unchanged)

    # (d) the same without a config saying tied: a mismatch, with a hint.
    a = save_checkpoint(tmp_path / "d_base", no_head, torch.bfloat16)
    b = save_checkpoint(tmp_path / "d_tuned", tuned_tied, torch.bfloat16)
    with pytest.raises(CheckpointError, match=r"only in tuned: lm_head.weight.*tie_word_embeddings"):
        update_sparsity(a, b)


def test_untied_lm_head_is_counted(tmp_path):
    base, tuned, changed = make_pair(seed=6)
    cfg = {"tie_word_embeddings": False}
    a = save_checkpoint(tmp_path / "base", base, torch.bfloat16, cfg)
    b = save_checkpoint(tmp_path / "tuned", tuned, torch.bfloat16, cfg)
    r = update_sparsity(a, b)
    assert r.n_params == sum(m.numel() for m in changed.values())
    assert "lm_head" in r.per_module


# ------------------------------------------------------------------------------- errors


def test_mismatched_architectures_name_the_tensor(tmp_path):
    base, tuned, _ = make_pair(seed=7)
    a = save_checkpoint(tmp_path / "base", base, torch.bfloat16)
    wrong_shape = dict(tuned, **{"model.layers.1.mlp.up_proj.weight": torch.zeros(FFN + 1, HIDDEN)})
    b = save_checkpoint(tmp_path / "shape", wrong_shape, torch.bfloat16)
    with pytest.raises(CheckpointError, match=r"'model.layers.1.mlp.up_proj.weight' has shape \[20, 12\] in base but \[21, 12\] in tuned"):
        update_sparsity(a, b)
    missing = {k: v for k, v in tuned.items() if k != "model.layers.2.self_attn.k_proj.bias"}
    missing["model.layers.2.self_attn.k_proj.bias_renamed"] = tuned["model.layers.2.self_attn.k_proj.bias"]
    c = save_checkpoint(tmp_path / "names", missing, torch.bfloat16)
    with pytest.raises(CheckpointError, match=r"only in base: model.layers.2.self_attn.k_proj.bias; only in tuned: model.layers.2.self_attn.k_proj.bias_renamed"):
        update_sparsity(a, c)


def test_bad_paths(tmp_path):
    with pytest.raises(CheckpointError, match="no such file or directory"):
        update_sparsity(tmp_path / "missing", tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="found neither model.safetensors nor model.safetensors.index.json"):
        update_sparsity(tmp_path / "empty", tmp_path / "empty")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": "gone.safetensors"}}))
    with pytest.raises(CheckpointError, match="gone.safetensors"):
        update_sparsity(broken, broken)
    with pytest.raises(ValueError, match="unknown comparison dtype"):
        compute_sparsity(tmp_path, tmp_path, ["fp16"])


# ------------------------------------------------------------------------------- CLI


def test_cli_json_keys_and_all(tmp_path):
    base, tuned, changed = make_pair(seed=8)
    a = save_checkpoint(tmp_path / "base", base, torch.float32)
    b = save_checkpoint(tmp_path / "tuned", tuned, torch.float32)
    code, out, _ = run_azr(["sparsity", str(a), str(b), "--json"])
    assert code == 0
    data = json.loads(out)
    for key in ("sparsity", "n_params", "n_unchanged", "dtype", "atol", "sparsity_atol", "n_unchanged_atol", "per_module", "per_layer"):
        assert key in data
    assert data["dtype"] == "bf16" and data["atol"] == 1e-5
    assert data["n_unchanged"] == sum(m.numel() - int(m.sum()) for m in changed.values())
    assert set(data["per_layer"]) == {"0", "1", "2"}

    code, out, _ = run_azr(["sparsity", str(a), str(b), "--dtype", "all", "--atol", "1e-3", "--json"])
    both = json.loads(out)
    assert set(both) == {"stored", "bf16", "fp32"}
    assert all(v["atol"] == 1e-3 for v in both.values())

    code, table, _ = run_azr(["sparsity", str(a), str(b), "--dtype", "all"])
    assert code == 0 and "Mukherjee" in table and "q_proj" in table and "layer 2" in table

    code, _, err = run_azr(["sparsity", str(a), str(tmp_path / "nowhere")])
    assert code == 2 and "nowhere" in err


# ------------------------------------------------------------------------------- memory


@pytest.mark.slow  # a memory bound, measured in its own process on two 64 MiB checkpoints
def test_peak_memory_stays_below_one_tensor(tmp_path):
    """A 64 MiB fp32 tensor pair is compared without holding either tensor whole (own process)."""
    import subprocess
    import sys

    gen = torch.Generator().manual_seed(9)
    weight = torch.rand(4096, 4096, generator=gen)
    save_checkpoint(tmp_path / "base", {"model.embed_tokens.weight": weight}, torch.float32)
    weight[::7] += 1.0
    save_checkpoint(tmp_path / "tuned", {"model.embed_tokens.weight": weight}, torch.float32)
    del weight
    script = f"""
import json
from azrlib.metrics.sparsity import compute_sparsity
def kib(field):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(field + ":"))
before = kib("VmRSS")
r = compute_sparsity({str(tmp_path / 'base')!r}, {str(tmp_path / 'tuned')!r}, ["stored", "bf16"],
                     read_elements=1 << 18, remap_bytes=4 << 20, workers=2)
print(json.dumps({{"grew_mib": (kib("VmHWM") - before) / 1024, "unchanged": r["stored"].n_unchanged}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    data = json.loads(out.strip().splitlines()[-1])
    assert data["unchanged"] == 4096 * 4096 - 586 * 4096  # rows 0, 7, ..., 4095 changed
    assert data["grew_mib"] < 48, data  # one of the two tensors alone is 64 MiB
