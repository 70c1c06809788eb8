"""Power of the RQ1, RQ5 and RQ2 headline comparisons at the tiny preset's sizes, calibrated on the
committed tiny reference (base and self-play seed 0 on the 300 held-out tinyworld problems).

    nice -n 5 .venv/bin/python docs/experiments/power_tiny.py [--sims 100] [--bootstrap 1000] [--parts rq1,rq5,rq2]

Prints the calibration, then per scenario and contrast: the truth, the mean estimate, the SD of
the estimate over simulations, the mean 95% half-width, coverage and power (interval excludes 0).
Uses azrlib.metrics.power.simulate_design (see its docstring for the simulation model).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from scipy.special import expit

from azrlib.metrics.passk import load_results, pass_at_k_matrix
from azrlib.metrics.power import ArmSpec, analytic_half_width, fit_logit_normal, simulate_design, simulate_trend

REF = "data/reference/tiny/eval"


def calibration():
    base = load_results(f"{REF}/base/tinyworld.jsonl")
    tuned = load_results(f"{REF}/selfplay_s0/tinyworld.jsonl").subset(base.problem_ids)
    n = int(base.n.min())
    p1 = float(base.c.sum() / base.n.sum())
    never = float(np.mean(base.c == 0))
    diff = pass_at_k_matrix(tuned.n, tuned.c, [1])[:, 0] - pass_at_k_matrix(base.n, base.c, [1])[:, 0]
    return {"n_problems": len(base.problem_ids), "n": n, "pass1": p1, "never": never, "diff_sd": float(diff.std())}


def rq2_residual_sd():
    rows = [json.loads(line) for line in open("data/reference/tiny/rq2/questions.jsonl")]
    rows = [r for r in rows if r["model"] == "base"]
    total = max(r["step"] for r in rows)
    x = np.array([(r["step"] - 0.5) / total for r in rows])
    y = np.array([r["solve_rate"] for r in rows])
    coef = np.polyfit(x, y, 1)
    return float(np.std(y - np.polyval(coef, x), ddof=2))


def per_problem_diff_sd(mu, tau, noise_sd, n, rng, problems=20_000):
    a = rng.normal(mu, tau, problems)
    c0 = rng.binomial(n, expit(a))
    c1 = rng.binomial(n, expit(a + rng.normal(0, noise_sd, problems)))
    return float(np.std((c1 - c0) / n))


def pass1_sd_of_seed_shift(mu, tau, seed_sd, rng):
    """SD over seeds of the population pass@1 when each seed shifts every logit by u ~ N(0, seed_sd^2)."""
    a = rng.normal(mu, tau, 50_000)
    return float(np.std([expit(a + u).mean() for u in rng.normal(0, seed_sd, 400)])) if seed_sd else 0.0


def row(name, r):
    head = f"  {name:<24} truth {r['truth']:+.4f}  est {r['mean_estimate']:+.4f}  sd {r['sd_estimate']:.4f}"
    parts = [f"{m}: hw {r[m]['mean_half_width']:.4f} cov {r[m]['coverage']:.2f} pow {r[m]['power']:.2f}"
             for m in ("bootstrap", "moment")]
    return head + "  | " + "  | ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sims", type=int, default=100)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--parts", default="rq1,rq5,rq2", help="comma-separated subset of rq1, rq5, rq2")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    t0 = time.time()
    rng = np.random.default_rng(0)
    cal = calibration()
    mu, tau = fit_logit_normal(cal["pass1"], cal["never"], cal["n"])
    grid = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    sds = [per_problem_diff_sd(mu, tau, s, cal["n"], rng) for s in grid]
    noise = grid[int(np.argmin([abs(s - cal["diff_sd"]) for s in sds]))]
    print(f"calibration (tiny reference, {cal['n_problems']} problems x {cal['n']} samples): base pass@1 "
          f"{cal['pass1']:.3f}, never solved {cal['never']:.2f}, self-play s0 - base per-problem pass@1 SD "
          f"{cal['diff_sd']:.3f}")
    print(f"  logit-normal base: mu {mu:.2f}, tau {tau:.2f}; per-problem noise_sd {noise} "
          f"(simulated diff SD by noise_sd: {dict(zip(grid, np.round(sds, 3)))})")
    ks = [1, 32]
    contrasts = {
        "self-play - base @1": [("selfplay", 0, 1.0), ("base", 0, -1.0)],
        "self-play - base @32": [("selfplay", 1, 1.0), ("base", 1, -1.0)],
        "gap change 1->32 (SP)": [("selfplay", 1, 1.0), ("base", 1, -1.0), ("selfplay", 0, -1.0), ("base", 0, 1.0)],
        "drop SP - drop RLVR": [("selfplay", 1, 1.0), ("selfplay", 0, -1.0), ("rlvr", 1, -1.0), ("rlvr", 0, 1.0)],
    }
    for where in (("per-seed", "shared") if "rq1" in parts else ()):
        var = {"noise_sd": noise} if where == "per-seed" else {"problem_sd": noise}
        for seed_sd in (0.1, 0.2):
            pts = pass1_sd_of_seed_shift(mu, tau, seed_sd, rng)
            for problems in (300, 600):
                arms = {"base": ArmSpec(),
                        "selfplay": ArmSpec(effect=0.3, n_seeds=3, seed_sd=seed_sd, **var),
                        "rlvr": ArmSpec(effect=0.6, n_seeds=3, seed_sd=seed_sd, **var)}
                out = simulate_design(arms, contrasts, problems, 32, ks, mu, tau, args.sims, args.bootstrap, seed=1)
                print(f"RQ1: {problems} problems x 32 samples, 3 seeds per arm, seed SD {seed_sd} logit "
                      f"(= {pts * 100:.2f} points of pass@1), per-problem deviation {where}; "
                      f"self-play +0.3 logit, RLVR +0.6 logit")
                for name, r in out.items():
                    print(row(name, r))
    # The closed form beside one simulated case (seed SD 0.1, 300 problems): problem part from
    # the calibrated per-problem SD of a 3-seed mean minus the base, seed part from the seed SD.
    if "rq1" in parts:
        sim_sd = np.std([np.mean([rng.binomial(32, expit(a + 0.3 + rng.normal(0, noise))) / 32 for _ in range(3)])
                         - rng.binomial(32, expit(a)) / 32 for a in rng.normal(mu, tau, 20_000)])
        print(f"closed form, pass@1 gap, 300 problems, 3 seeds, seed SD 0.1 logit: half-width "
              f"{analytic_half_width(sim_sd, 300, [pass1_sd_of_seed_shift(mu, tau, 0.1, rng)], [3]):.4f} "
              f"(per-problem SD of the difference {sim_sd:.3f})")
    for shared in ((False, True) if "rq5" in parts else ()):
        for seed_sd in (0.1, 0.2):
            pts = pass1_sd_of_seed_shift(mu, tau, seed_sd, rng)
            label = "shared" if shared else None
            # -2 points of pass@1 at this base: find the logit shift with that population effect.
            a = rng.normal(mu + 0.3, tau, 200_000)
            shifts = np.linspace(-0.6, 0, 61)
            eff = [float(expit(a + s).mean() - expit(a).mean()) for s in shifts]
            delta = float(shifts[int(np.argmin([abs(e + 0.02) for e in eff]))])
            arms = {"azr": ArmSpec(effect=0.3, n_seeds=3, seed_sd=seed_sd, noise_sd=noise, seeds=label),
                    "band": ArmSpec(effect=0.3 + delta, n_seeds=3, seed_sd=seed_sd, noise_sd=noise, seeds=label)}
            out = simulate_design(arms, {"band - azr @1": [("band", 0, 1.0), ("azr", 0, -1.0)]}, 300, 8, [1, 8],
                                  mu, tau, args.sims, args.bootstrap, seed=2)
            r = out["band - azr @1"]
            print(f"RQ5: 300 tasks x 8 samples, 3 seeds per arm, seed effects {'shared (paired)' if shared else 'independent'}, "
                  f"seed SD {seed_sd} logit (= {pts * 100:.2f} points); true effect {r['truth'] * 100:+.2f} points")
            print(row("band - azr @1", r))
            lo = r["mean_estimate"] - r["moment"]["mean_half_width"]
            hi = r["mean_estimate"] + r["moment"]["mean_half_width"]
            print(f"  typical moment interval [{lo * 100:+.2f}, {hi * 100:+.2f}] points")
    if "rq2" in parts:
        resid = rq2_residual_sd()
        print(f"RQ2 calibration: base solve rate around its OLS line on training fraction, one seed of the "
              f"tiny reference: residual SD {resid:.3f}")
        for n_seeds in (3, 5):
            for slope_sd in (0.0, 0.05, 0.1):
                r = simulate_trend(n_seeds, 150, -0.1, resid, seed_slope_sd=slope_sd, seed_sd=0.03,
                                   n_sims=args.sims, n_bootstrap=200, seed=3)
                print(f"RQ2: {n_seeds} seeds x 150 questions, true slope -0.10, seed slope SD {slope_sd}: " + "  | ".join(
                    f"{m}: hw {v['mean_half_width']:.3f} cov {v['coverage']:.2f} pow {v['power']:.2f}" for m, v in r.items()))
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
