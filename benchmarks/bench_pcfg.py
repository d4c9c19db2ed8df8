"""PCFG data-layer speed: ratios against baselines measured in the same run.

1. CYK membership vs NLTK's EarleyChartParser on a cfg3-shaped plain grammar at n ≈ 100/200/400,
   with identical accept/reject decisions on sampled and corrupted sequences (target ≥ 50×).
2. Exact log p(x) vs our own membership check (target ≤ 2×) and vs NLTK's ViterbiParser at n ≈ 200
   (target ≥ 1,000×; Viterbi computes a max, not a sum). Chart memory: non-empty cells vs all cells.
3. Sampling 10,000 `paper` sequences vs a straightforward recursive Python sampler (target ≥ 10×).

Usage: python benchmarks/bench_pcfg.py [--per-length 8] [--viterbi 1]   (needs `pip install nltk`)
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from metacond.data_builders.pcfg import Grammar, GrammarSpec, PCFGInference, generate_grammar, preset_grammar, sample
from metacond.data_builders.pcfg.grammar import Rule

# (depth, weight of length-2 right-hand sides) putting the mean length near each target n.
SHAPES = {100: (5, 0.5), 200: (6, 0.6), 400: (6, 0.3)}


def cfg3_shaped(depth: int = 6, w2: float = 0.4, seed: int = 0) -> Grammar:
    """cfg3-like: 3 terminals, 3 symbols per level, 2-3 rules of length 2-3, no variants."""
    g = generate_grammar(GrammarSpec(depth=depth, symbols_per_level=[1] + [3] * (depth - 1), variants_per_level=[1] * depth, rules_per_symbol=[2, 3],
                                     rhs_lengths=[2, 3], rhs_length_weights=[w2, 1 - w2], num_terminals=3, prob_style="dirichlet", seed=seed))
    # Import as a plain grammar, as a user would with a published cfg3 file.
    return Grammar(g.terminals, g.nonterminals, g.start, [Rule(r.lhs, r.rhs, r.prob) for r in g.rules], None, name="cfg3-shaped")


def nltk_grammars(g: Grammar):
    import nltk
    from nltk.grammar import Nonterminal, ProbabilisticProduction, Production

    nts = {a: Nonterminal(a) for a in g.nonterminals}
    conv = lambda s: nts.get(s, s)  # noqa: E731
    cfg = nltk.CFG(nts[g.start], [Production(nts[r.lhs], [conv(s) for s in r.rhs]) for r in g.rules])
    pcfg = nltk.PCFG(nts[g.start], [ProbabilisticProduction(nts[r.lhs], [conv(s) for s in r.rhs], prob=r.prob) for r in g.rules])
    return cfg, pcfg


def timeit(fn, repeat=3):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def recursive_sampler(g: Grammar, n: int, seed: int) -> list[list[str]]:
    """The straightforward baseline: one Python call per node."""
    rng = np.random.default_rng(seed)
    terms = set(g.terminals)
    priors = g.priors

    def expand(sym, j, out):
        if sym in terms:
            out.append(sym)
            return
        d = g.level_of(sym)
        rules = g.rules_for(sym, j[d] if d >= 0 else 0)
        r = rules[int(rng.choice(len(rules), p=[x.prob for x in rules]))]
        for s in r.rhs:
            expand(s, j, out)

    seqs = []
    for _ in range(n):
        j = [int(rng.choice(len(p), p=p)) for p in priors]
        out: list[str] = []
        expand(g.start, j, out)
        seqs.append(out)
    return seqs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-length", type=int, default=8, help="sequences per target length")
    ap.add_argument("--viterbi", type=int, default=1, help="sequences for the (slow) NLTK Viterbi baseline")
    ap.add_argument("--json", type=str, default=None, help="also write the results here")
    args = ap.parse_args()
    try:
        import nltk  # noqa: F401
    except ImportError:
        raise SystemExit("this benchmark needs NLTK for its baselines: pip install nltk (or `make bench`)")

    results: dict = {}
    rng = np.random.default_rng(0)
    from nltk.parse import EarleyChartParser, ViterbiParser

    print(f"{'n':>5} {'seqs':>5} {'earley ms':>10} {'ours ms':>9} {'ratio':>8} {'logp ms':>9} {'logp/cyk':>8} {'agree':>6} {'cells used':>12}")
    per_target = {}
    for target in (100, 200, 400):
        depth, w2 = SHAPES[target]
        g = cfg3_shaped(depth, w2)
        inf = PCFGInference(g)
        pool = sample(g, 4000, seed=0)
        lens = pool.lengths()
        cfg, pcfg = nltk_grammars(g)
        try:
            earley = EarleyChartParser(cfg, max_time=None)  # newer NLTK (3.10.4 here) stops a chart_parse after 5 s by default
        except TypeError:
            earley = EarleyChartParser(cfg)  # older NLTK: no time limit, no max_time parameter
        inf.accepts([pool.sequence(0)])  # compile outside the timings
        inf.log_prob([pool.sequence(0)])
        per_target[target] = (g, inf, pool, lens, pcfg)
        idx = np.argsort(np.abs(lens - target))[: args.per_length]
        sampled = [[g.terminals[t] for t in pool.sequence(i)] for i in idx]
        corrupted = []
        for s in sampled:
            s = list(s)
            for _ in range(2):
                s[int(rng.integers(len(s)))] = g.terminals[int(rng.integers(len(g.terminals)))]
            corrupted.append(s)
        seqs = sampled + corrupted
        t_ours, ours = timeit(lambda: inf.accepts(seqs))
        t_logp, lp = timeit(lambda: inf.log_prob(seqs))
        t0 = time.perf_counter()
        ref = [any(True for _ in earley.chart_parse(s).parses(cfg.start())) for s in seqs]
        t_earley = time.perf_counter() - t0
        agree = bool(np.array_equal(ours, ref)) and bool(np.array_equal(np.isfinite(lp), ours))
        cs = inf.chart_size(seqs)
        n_mean = float(np.mean([len(s) for s in seqs]))
        total_cells = n_mean * (n_mean + 1) / 2
        row = {
            "grammar": g.summary(), "n_mean": n_mean, "sequences": len(seqs), "rejected": int((~np.asarray(ref)).sum()),
            "earley_ms": 1e3 * t_earley / len(seqs), "ours_ms": 1e3 * t_ours / len(seqs), "cyk_ratio": t_earley / t_ours,
            "logp_ms": 1e3 * t_logp / len(seqs), "logp_over_cyk": t_logp / t_ours, "decisions_identical": agree,
            "nonempty_cells": float(cs[:, 0].mean()), "chart_entries": float(cs[:, 1].mean()), "all_cells": total_cells,
        }
        results[f"n{target}"] = row
        print(f"{n_mean:5.0f} {len(seqs):5d} {row['earley_ms']:10.2f} {row['ours_ms']:9.3f} {row['cyk_ratio']:7.0f}x {row['logp_ms']:9.3f} "
              f"{row['logp_over_cyk']:7.2f}x {str(agree):>6} {row['nonempty_cells']:6.0f}/{total_cells:.0f}  ({row['rejected']} rejected)")

    g, inf, pool, lens, pcfg = per_target[200]
    # Viterbi baseline at n ≈ 200 (--viterbi 0 skips it).
    if args.viterbi > 0:
        idx = np.argsort(np.abs(lens - 200))[: args.viterbi]
        seqs = [[g.terminals[t] for t in pool.sequence(i)] for i in idx]
        try:
            viterbi = ViterbiParser(pcfg, max_time=None)  # newer NLTK stops after 5 s by default
        except TypeError:
            viterbi = ViterbiParser(pcfg)
        t0 = time.perf_counter()
        for s in seqs:
            list(viterbi.parse(s))
        t_vit = (time.perf_counter() - t0) / len(seqs)
        t_lp, _ = timeit(lambda: inf.log_prob(seqs), repeat=5)
        t_lp /= len(seqs)
        results["viterbi"] = {"n_mean": float(np.mean([len(s) for s in seqs])), "viterbi_s": t_vit, "ours_logp_ms": 1e3 * t_lp, "ratio": t_vit / t_lp}
        print(f"exact log p(x) at n≈200: NLTK ViterbiParser {t_vit:.2f} s/seq, ours {1e3 * t_lp:.3f} ms/seq -> {t_vit / t_lp:,.0f}x")


    # Sampling 10,000 paper sequences.
    gp = preset_grammar("paper")
    sample(gp, 100, seed=0)
    t_vec, b = timeit(lambda: sample(gp, 10_000, seed=1), repeat=3)
    t0 = time.perf_counter()
    rec = recursive_sampler(gp, 10_000, seed=1)
    t_rec = time.perf_counter() - t0
    results["sampling"] = {"sequences": 10_000, "mean_length": float(b.lengths().mean()), "recursive_mean_length": float(np.mean([len(s) for s in rec])),
                           "vectorized_s": t_vec, "recursive_s": t_rec, "ratio": t_rec / t_vec}
    print(f"sampling 10,000 paper sequences (mean length {b.lengths().mean():.0f}): recursive Python {t_rec:.2f} s, ours {t_vec:.3f} s -> {t_rec / t_vec:.0f}x")

    print("\nratios: CYK vs Earley " + ", ".join(f"n≈{k[1:]}: {v['cyk_ratio']:.0f}x" for k, v in results.items() if k.startswith("n"))
          + f" | log p(x)/CYK ≤ {max(v['logp_over_cyk'] for k, v in results.items() if k.startswith('n')):.2f}x"
          + (f" | log p(x) vs Viterbi {results['viterbi']['ratio']:,.0f}x" if "viterbi" in results else "")
          + f" | sampling {results['sampling']['ratio']:.0f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
