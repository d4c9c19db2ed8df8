"""The PCFG study's report: a paired, seeded verdict per finding, results.json, report.md, verdicts.txt, figures.

Every comparison pairs two arms on the same items (held-out sequences, probe test sequences,
prompts) through ``metacond.studies.stats``; every arm is several training runs (seeds), and
intervals carry the item and the seed spread (``seeded_difference``). The cell rules below were fixed
on 2026-11-25, before the first run of this design; the smallest effects of interest, their sources
(``SOURCES``) and the equivalence logic on 2026-12-02, before the first seeded run; none is tuned
toward any result:

- probing and grammar verdicts use only informative cells: the Bayes classifier is >= chance + 0.10
  and <= 0.97 on the cell's test items (``INFORMATIVE_*`` in data_builders/pcfg/inference.py) and the
  probe had >= 50 distinct training prompts;
- short prompts are L <= 5 terminals, long prompts L >= 20 or the full sequence;
- smallest effects of interest (the paper gives curves, not these numbers): a 0.05 probe or
  grammar-accuracy deficit at short prompts; 0.02 nats/token of extra loss at early positions (t <= 10);
  half the Bayes gain for "metadata lowers the loss"; 0.02 / 0.05 accuracy for "helps at long prompts";
- non-inferiority margins: a tenth of the Bayes metadata gain for "no noticeable loss difference without
  metadata" (was a fixed 0.01 nats/token with no source); 0.02 probe accuracy and 0.05 grammar accuracy
  for "as well at long prompts"; each needs a D_M = 0
  baseline with signal (half the unigram-to-Bayes loss gap closed; probes at half the Bayes margin);
  a superiority test whose baseline has no such signal cannot read "not reproduced" (inconclusive);
- grammar-accuracy lengths have signal when the two models' mean acceptance is >= 0.30;
- probe differences resample prompts (clusters at the shortest L of the cells), not sequences.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from metacond.data_builders.pcfg.inference import INFORMATIVE_MIN_GAIN, is_informative
from metacond.eval_tasks.pcfg.loss import EARLY_POSITIONS
from metacond.eval_tasks.pcfg.probing import MIN_TRAIN_PROMPTS
from metacond.figures import finish, pyplot, save
from metacond.studies.stats import PairedDifference, Verdict, forest_plot, non_inferiority, paired_difference, seed_note, seeded_difference, superiority

SHORT_MAX_L = 5
LONG_MIN_L = 20
GRAMMAR_SIGNAL = 0.30
# Smallest effects of interest (SESOI) and margins, each with its source. The paper (Higuchi et al. 2025,
# arXiv 2504.17562) shows curves, not numbers, so each size is our reading of it, fixed in code before the
# seeded reference run (2026-12-02) and never tuned toward a result.
PAPER = "Higuchi et al. 2025 (arXiv 2504.17562)"
THRESHOLDS_COMMIT = "358c99f"  # where SESOIs, sources and the seeded verdict rules were fixed, before the seeded reference runs
PROBE_SHORT_EFFECT = 0.05
GRAMMAR_SHORT_EFFECT = 0.05
EARLY_LOSS_EFFECT = 0.02
METADATA_GAIN_SHARE = 0.5
LONG_PROBE_EFFECT = 0.02
LONG_GRAMMAR_EFFECT = 0.05
LOSS_MARGIN_SHARE = 0.1
LONG_PROBE_MARGIN = 0.02
LONG_GRAMMAR_MARGIN = 0.05
SOURCES = {
    "metadata_gain": f"half the Bayes-optimal loss gain from the metadata on this grammar (an ideal model gains all of it; {PAPER} shows the gain as curves)",
    "loss_margin": f"one tenth of the Bayes-optimal metadata gain: 'not noticeably different' an order of magnitude below what the metadata buys ({PAPER} reports "
                   "no significant difference and no number)",
    "early_loss": f"ours: 0.02 nats/token over the first 10 positions, about a quarter of this grammar's Bayes metadata gain ({PAPER}: the deficit sits early)",
    "probe_short": f"ours: a 0.05 accuracy deficit at L <= 5, the smallest gap its probing figure would show ({PAPER}, curves only)",
    "grammar_short": f"ours: a 0.05 grammar-accuracy deficit at L <= 5 ({PAPER}, curves only)",
    "probe_long": f"ours: 0.02 probe accuracy at long prompts ({PAPER}, curves only)",
    "grammar_long": f"ours: 0.05 grammar accuracy at long prompts ({PAPER}, curves only)",
}
# A "no worse" claim needs a baseline with signal: D_M=0 within half the unigram-to-Bayes loss gap, or
# probes reaching half the Bayes margin over chance on the cells compared.
BASELINE_SIGNAL_SHARE = 0.5
# The regime the paper studies: a D_M = 0 model close to Bayes in loss and in reading the latent.
REGIME_EXCESS_LOSS = 0.05
REGIME_PROBE_SHARE = 0.5


def _is_short(L: str) -> bool:
    return L != "full" and int(L) <= SHORT_MAX_L


def _is_long(L: str) -> bool:
    return L == "full" or int(L) >= LONG_MIN_L


def _runs(results: dict[str, Any], depth: int) -> list[dict[str, Any]]:
    """Every training run's evaluation of one D_M (one per seed, the same items in each)."""
    return results["models"][str(depth)]


def probe_cells(results: dict[str, Any], depth: int) -> list[dict[str, Any]]:
    """Every probed (level, L) cell with its Bayes accuracy on the cell's test items and whether it is informative
    (the cells and their items are the same in every run: they come from the held-out pool and its prompt split)."""
    bayes = np.asarray(results["bayes"]["probe_correct"])
    chance = results["bayes"]["chance"]
    out = []
    for d, level in enumerate(_runs(results, depth)[0]["probing"]["levels"]):
        for li, cell in enumerate(level):
            if not cell:
                continue
            idx = np.asarray(cell["items"]["index"])
            b = float(bayes[d, li, idx].mean())
            reason = None
            if not is_informative(b, chance[d]):
                reason = "Bayes at chance" if b < chance[d] + INFORMATIVE_MIN_GAIN else "Bayes saturated"
            elif cell["n_train_prompts"] < MIN_TRAIN_PROMPTS:
                reason = f"{cell['n_train_prompts']} training prompts"
            out.append({"level": d, "li": li, "L": cell["L"], "bayes": b, "chance": chance[d], "informative": reason is None, "why_not": reason,
                        "name": f"d={d}, L={cell['L']}"})
    return out


def _probe_clusters(results: dict[str, Any], cells: list[dict[str, Any]]) -> np.ndarray:
    """Prompt ids at the shortest L among ``cells``: sequences sharing that prompt share every longer-L cell's
    prompt-level randomness (which prompts fell in the probe's test split), so they are resampled together."""
    li = min(c["li"] for c in cells)
    return np.asarray(results["bayes"]["probe_groups"][li])


def _probe_runs(results: dict[str, Any], depth: int, cells: list[dict[str, Any]]) -> list[np.ndarray]:
    """Per run: [cells, pool] probe correctness on each cell's test items (NaN elsewhere)."""
    n = len(results["bayes"]["probe_correct"][0][0])
    first = _runs(results, depth)[0]["probing"]["levels"]
    out = []
    for run in _runs(results, depth):
        m = np.full((len(cells), n), np.nan)
        for c, cell in enumerate(cells):
            it = run["probing"]["levels"][cell["level"]][cell["li"]]["items"]
            assert it["index"] == first[cell["level"]][cell["li"]]["items"]["index"], "probe test items differ between runs"
            m[c, it["index"]] = np.asarray(it["correct"], float)
        out.append(m)
    return out


def _probe_difference(results: dict[str, Any], a: int, b: int, cells: list[dict[str, Any]]) -> PairedDifference:
    ra, rb = _probe_runs(results, a, cells), _probe_runs(results, b, cells)
    if not np.array_equal(np.isfinite(ra[0]), np.isfinite(rb[0])):
        raise ValueError("probe test items differ between the two arms: the study directory mixes runs")
    cl = _probe_clusters(results, cells)
    seen = np.isfinite(ra[0]).any(0)
    # Items outside every cell (and shorter than the shortest L) get their own cluster id; they carry no weight.
    cl = np.where(seen, cl, -1 - np.arange(len(cl)))
    return seeded_difference(ra, rb, clusters=cl)


def _grammar_rows(run: dict[str, Any], key: str = "grammar_masked") -> dict[int, dict[str, Any]]:
    return {r["L"]: r for r in run.get(key, {}).get("rows", []) if r}


def _grammar_accuracy(results: dict[str, Any], depth: int) -> dict[int, float]:
    """Mean over runs of each length's acceptance rate."""
    rows = [_grammar_rows(r) for r in _runs(results, depth)]
    return {L: float(np.mean([r[L]["accuracy"] for r in rows])) for L in rows[0] if all(L in r for r in rows)}


def _grammar_runs(results: dict[str, Any], depth: int, Ls: list[int]) -> list[np.ndarray]:
    out = []
    for run in _runs(results, depth):
        rows = _grammar_rows(run)
        n = max(max(rows[L]["items"]["index"]) for L in Ls) + 1
        m = np.full((len(Ls), n), np.nan)
        for c, L in enumerate(Ls):
            m[c, rows[L]["items"]["index"]] = np.asarray(rows[L]["items"]["accepted"], float)
        out.append(m)
    return out


def _grammar_difference(results: dict[str, Any], a: int, b: int, Ls: list[int]) -> PairedDifference:
    ra, rb = _grammar_runs(results, a, Ls), _grammar_runs(results, b, Ls)
    first = _grammar_rows(_runs(results, a)[0])
    for run in _runs(results, b):
        assert all(_grammar_rows(run)[L]["items"]["index"] == first[L]["items"]["index"] for L in Ls), "grammar prompts differ between models"
    n = max(x.shape[1] for x in ra + rb)
    pad = lambda m: np.pad(m, ((0, 0), (0, n - m.shape[1])), constant_values=np.nan)  # noqa: E731
    return seeded_difference([pad(m) for m in ra], [pad(m) for m in rb])


def _loss_items(results: dict[str, Any], depth: int) -> list[dict[str, np.ndarray]]:
    return [{k: np.asarray(v, dtype=float) for k, v in r["loss"]["items"].items() if k != "model_masked_by_position"} for r in _runs(results, depth)]


def _mean_excess(results: dict[str, Any], depth: int) -> float:
    return float(np.mean([r["loss"]["masked"]["excess_loss"] for r in _runs(results, depth)]))


def findings(results: dict[str, Any]) -> list[Verdict]:
    models = sorted(int(k) for k in results["models"])
    tokens = {tuple(r["loss"]["items"]["tokens"]) for d in models for r in _runs(results, d)}
    if len(tokens) > 1:
        raise ValueError("the models' loss evaluations cover different sequences: the study directory mixes runs")
    out: list[Verdict] = []
    base = 0 if 0 in models else None
    for d in models:
        if d == 0:
            continue
        runs = _loss_items(results, d)
        tok = runs[0]["tokens"]
        bayes_gain = float((runs[0]["bayes_masked"].sum() - runs[0]["bayes_metadata"].sum()) / tok.sum())
        gain = seeded_difference([it["model_masked"] - it["model_metadata"] for it in runs], None, tok)
        out.append(superiority(f"Metadata lowers the loss when it is given (D_M={d})", gain, METADATA_GAIN_SHARE * max(bayes_gain, 1e-9),
                               "nats/token", source=SOURCES["metadata_gain"], informative=bayes_gain > 0, why_uninformative="the Bayes gain is zero",
                               bayes_gain=bayes_gain, share_of_bayes_gain=gain.estimate / bayes_gain if bayes_gain > 0 else None))
        if base is not None:
            b0 = _loss_items(results, base)
            harm = seeded_difference([it["model_masked"] for it in runs], [it["model_masked"] for it in b0], tok)
            excess0 = _mean_excess(results, base)
            room = results["bayes"]["unigram_loss"] - _runs(results, base)[0]["loss"]["masked"]["bayes_loss"]
            signal = excess0 <= BASELINE_SIGNAL_SHARE * room
            out.append(non_inferiority(f"Without metadata, the D_M={d} model's loss is not noticeably worse than D_M=0's", harm,
                                       LOSS_MARGIN_SHARE * max(bayes_gain, 1e-9), "nats/token", source=SOURCES["loss_margin"], informative=signal,
                                       why_uninformative=f"the D_M=0 baseline has no signal: {excess0:.3f} nats/token above Bayes, more than half the "
                                       f"unigram-to-Bayes gap ({room:.3f})"))
    if base is None or len(models) < 2:
        return out
    deep = max(models)
    it, b0 = _loss_items(results, deep), _loss_items(results, base)
    early_tokens = np.minimum(EARLY_POSITIONS, it[0]["tokens"])
    out.append(superiority(f"Mechanism: without metadata the D_M={deep} model loses more than D_M=0 at early positions (t <= {EARLY_POSITIONS})",
                           seeded_difference([x["model_masked_early"] for x in it], [x["model_masked_early"] for x in b0], early_tokens),
                           EARLY_LOSS_EFFECT, "nats/token", source=SOURCES["early_loss"]))

    cells = probe_cells(results, base)
    short = [c for c in cells if c["informative"] and _is_short(c["L"])]
    long_ = [c for c in cells if c["informative"] and _is_long(c["L"])]
    names = lambda cs: [c["name"] for c in cs]  # noqa: E731
    why = lambda kind: f"no informative {kind} probe cell (Bayes within 0.10 of chance, saturated, or too few training prompts)"  # noqa: E731
    short_share = _probe_share(results, base, short) if short else float("nan")
    out.append(superiority(f"With short prompts (L <= {SHORT_MAX_L}) the D_M={deep} model encodes the latent worse than D_M=0 (probing)",
                           _probe_difference(results, base, deep, short) if short else None, PROBE_SHORT_EFFECT, "accuracy",
                           source=SOURCES["probe_short"], informative=bool(short), why_uninformative=why("short"),
                           baseline_signal=short_share >= BASELINE_SIGNAL_SHARE,
                           why_no_signal=f"the D_M=0 baseline has no signal to lose: its probes reach {short_share:.0%} of the Bayes margin over "
                           f"chance on these cells (need {BASELINE_SIGNAL_SHARE:.0%})", cells=names(short)))
    g0, gd = _grammar_accuracy(results, base), _grammar_accuracy(results, deep)
    # A length has signal when the two models together are accepted often enough; gating on one model alone would
    # pick lengths where that model happens to be high and bias the difference toward it.
    sig = [L for L in g0 if L in gd and (g0[L] + gd[L]) / 2 >= GRAMMAR_SIGNAL]
    gs = [L for L in sig if L <= SHORT_MAX_L]
    out.append(superiority(f"With short prompts (L <= {SHORT_MAX_L}) the D_M={deep} model continues grammatically less often than D_M=0",
                           _grammar_difference(results, base, deep, gs) if gs else None, GRAMMAR_SHORT_EFFECT, "accuracy",
                           source=SOURCES["grammar_short"], informative=bool(gs),
                           why_uninformative=f"the two models' mean grammar accuracy is below {GRAMMAR_SIGNAL} at every short L", cells=[f"L={L}" for L in gs]))
    probe_long = _probe_difference(results, deep, base, long_) if long_ else None
    harm = None if probe_long is None else probe_long.negated()
    share = _probe_share(results, base, long_)
    out.append(non_inferiority(f"With long prompts (L >= {LONG_MIN_L} or full) the D_M={deep} model encodes the latent as well as D_M=0 (probing)",
                               harm, LONG_PROBE_MARGIN, "accuracy", source=SOURCES["probe_long"], informative=bool(long_) and share >= BASELINE_SIGNAL_SHARE,
                               why_uninformative=why("long") if not long_ else f"the D_M=0 baseline has no signal: its probes reach {share:.0%} of the "
                               f"Bayes margin over chance on these cells (need {BASELINE_SIGNAL_SHARE:.0%})", cells=names(long_)))
    out.append(superiority(f"With long prompts (L >= {LONG_MIN_L} or full) the D_M={deep} model encodes the latent better than D_M=0 (probing)",
                           probe_long, LONG_PROBE_EFFECT, "accuracy", source=SOURCES["probe_long"], informative=bool(long_), why_uninformative=why("long"),
                           cells=names(long_)))
    gl = [max(sig)] if sig and max(sig) >= LONG_MIN_L else []
    grammar_long = _grammar_difference(results, deep, base, gl) if gl else None
    gharm = None if grammar_long is None else grammar_long.negated()
    no_long = f"the two models' mean grammar accuracy is below {GRAMMAR_SIGNAL} at every L >= {LONG_MIN_L}"
    out.append(non_inferiority(f"With long prompts the D_M={deep} model continues grammatically as well as D_M=0", gharm, LONG_GRAMMAR_MARGIN,
                               "accuracy", source=SOURCES["grammar_long"], informative=bool(gl), why_uninformative=no_long, cells=[f"L={L}" for L in gl]))
    out.append(superiority(f"With long prompts the D_M={deep} model continues grammatically better than D_M=0", grammar_long, LONG_GRAMMAR_EFFECT,
                           "accuracy", source=SOURCES["grammar_long"], informative=bool(gl), why_uninformative=no_long, cells=[f"L={L}" for L in gl]))
    return out


def _probe_share(results: dict[str, Any], depth: int, cells: list[dict[str, Any]], run: int | None = None) -> float:
    """Mean over cells (and runs, unless ``run`` is given) of (model accuracy - chance) / (Bayes accuracy - chance)."""
    runs = _runs(results, depth) if run is None else [_runs(results, depth)[run]]
    shares = [(r["probing"]["levels"][c["level"]][c["li"]]["test_accuracy"] - c["chance"]) / (c["bayes"] - c["chance"]) for r in runs for c in cells]
    return float(np.mean(shares)) if shares else float("nan")


def regime(results: dict[str, Any]) -> dict[str, Any] | None:
    """Is the D_M = 0 model in the regime the paper studies? (a) masked loss within 0.05 nats/token of Bayes;
    (b) on the informative probing cells, at least half of the Bayes margin over chance. Judged on the mean
    over its training runs; each run's value is kept beside it."""
    if "0" not in results["models"]:
        return None
    runs = _runs(results, 0)
    per_excess = [r["loss"]["masked"]["excess_loss"] for r in runs]
    excess = float(np.mean(per_excess))
    cells = [c for c in probe_cells(results, 0) if c["informative"]]
    per_share = [_probe_share(results, 0, cells, run=i) for i in range(len(runs))] if cells else []
    share = float(np.mean(per_share)) if cells else None
    return {"excess_loss": excess, "loss_ok": excess <= REGIME_EXCESS_LOSS, "probe_share_of_bayes_margin": share,
            "probe_ok": share is not None and share >= REGIME_PROBE_SHARE, "cells": len(cells), "runs": len(runs),
            "excess_loss_per_run": per_excess, "probe_share_per_run": per_share}


# ---------------------------------------------------------------------- figures
def _fig_verdicts(verdicts: list[Verdict], path: Path) -> None:
    plt = pyplot()
    vs = [v for v in verdicts if v.difference and np.isfinite(v.difference["estimate"])]
    if not vs:
        return
    fig, axes = plt.subplots(len(vs), 1, figsize=(9.0, 1.25 * len(vs) + 0.6), dpi=110)
    axes = np.atleast_1d(axes)
    for ax, v in zip(axes, vs):
        d = v.difference
        label = "smallest effect of interest" if v.test == "superiority" else "margin"
        forest_plot(ax, [(v.verdict, d)], threshold=v.threshold, threshold_label=label, xlabel="", equivalence=v.test == "superiority")
        lo, hi = min(0, d["ci_low"], -v.threshold if v.test == "superiority" else 0), max(0, d["ci_high"], v.threshold)
        pad = 0.15 * (hi - lo or 1e-3)
        ax.set_xlim(lo - pad, hi + pad)
        title = f"{v.finding} [{v.units}; {'positive = paper' if v.test == 'superiority' else 'positive = worse'}; {seed_note(d)}]"
        ax.set_title(textwrap.fill(title, 130), fontsize=7, loc="left")
    save(fig, path, suptitle="Paired differences with 95% intervals over items and training seeds")


def _fig_probing(results, path: Path) -> None:
    plt = pyplot()
    models = {int(k): v[0] for k, v in results["models"].items()}  # the first run of each D_M (verdicts pool every run)
    lengths = results["bayes"]["lengths"]
    bayes = np.asarray(results["bayes"]["probe_correct"], float)
    D = bayes.shape[0]
    cells0 = {(c["level"], c["li"]): c for c in probe_cells(results, min(models))}
    fig, axes = plt.subplots(1, D, figsize=(3.0 * D, 3.3), dpi=110, sharey=True)
    axes = np.atleast_1d(axes)
    x = np.arange(len(lengths))
    for d, ax in enumerate(axes):
        for i, (dm, m) in enumerate(sorted(models.items())):
            rows = m["probing"]["levels"][d]
            ys = np.array([r["test_accuracy"] if r else np.nan for r in rows])
            es = np.array([1.96 * r["test_se"] if r else np.nan for r in rows])
            ax.errorbar(x + 0.06 * i, ys, yerr=es, fmt="o-", ms=3, capsize=2, label=f"D_M={dm}, seed {m.get('training_seed', 0)}")
        bay = [np.nan if (d, li) not in cells0 else cells0[(d, li)]["bayes"] for li in range(len(lengths))]
        ax.plot(x, bay, "k--", lw=1.5, label="Bayes (same test items)")
        ax.axhline(results["bayes"]["chance"][d], color="gray", ls=":", lw=1, label="chance")
        for li in range(len(lengths)):
            if (d, li) in cells0 and cells0[(d, li)]["informative"]:
                ax.axvspan(li - 0.4, li + 0.4, color="C2", alpha=0.08, lw=0)
        ax.set_xticks(x, lengths)
        ax.set_title(f"level d={d}")
        ax.set_xlabel("prompt length L")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("probe accuracy on unseen prompts")
    axes[-1].legend(fontsize=6, loc="lower right")
    save(fig, path, suptitle="Linear probing of j_d from a masked prefix (green: informative cells that enter verdicts)")


def _fig_grammar(results, path: Path) -> None:
    plt = pyplot()
    models = {int(k): v[0] for k, v in results["models"].items()}  # the first run of each D_M
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    ys = []
    for i, (dm, m) in enumerate(sorted(models.items())):
        rows = [r for r in m["grammar_masked"]["rows"] if r]
        ax.errorbar([str(r["L"]) for r in rows], [r["accuracy"] for r in rows], yerr=[1.96 * r["se"] for r in rows], fmt="o-", color=f"C{i}", ms=3,
                    capsize=2, label=f"D_M={dm}, masked prefix")
        ys += [r["accuracy"] for r in rows]
        if "grammar_metadata" in m:
            rows = [r for r in m["grammar_metadata"]["rows"] if r]
            ax.plot([str(r["L"]) for r in rows], [r["accuracy"] for r in rows], "s--", color=f"C{i}", ms=3, alpha=0.7, label=f"D_M={dm}, true metadata")
            ys += [r["accuracy"] for r in rows]
    base = results["bayes"].get("grammar_unigram") or {}
    if base:
        ax.plot(list(base), list(base.values()), "x:", color="k", ms=4, label="unigram continuations (trivial baseline)")
        ys += list(base.values())
    ax.axhline(GRAMMAR_SIGNAL, color="gray", ls=":", lw=1, label=f"signal threshold ({GRAMMAR_SIGNAL})")
    if ys:
        ax.set_ylim(max(0.0, min(ys) - 0.08), min(1.0, max(ys) + 0.08))
    finish(fig, ax, path, xlabel="prompt length L (terminals)", ylabel="fraction accepted by CYK (95% CI)",
           title="Grammar accuracy of sampled continuations")


def _fig_loss_by_position(results, path: Path) -> None:
    plt = pyplot()
    models = {int(k): v[0] for k, v in results["models"].items()}  # the first run of each D_M
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), dpi=110)
    for i, (dm, m) in enumerate(sorted(models.items())):
        ex = m["loss"]["masked"].get("excess_by_position")
        if ex:
            axes[0].plot(np.arange(1, len(ex) + 1), ex, "-", color=f"C{i}", label=f"D_M={dm}")
    axes[0].axvline(EARLY_POSITIONS + 0.5, color="gray", ls=":", lw=1)
    axes[0].set_xlabel("position t of the predicted terminal")
    axes[0].set_ylabel("model minus Bayes loss (nats), masked prefix")
    axes[0].set_title("Excess loss over Bayes by position")
    axes[0].grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    if 0 in models and len(models) > 1:
        deep = max(models)
        # Seed means of each arm, paired by sequence.
        a = np.mean([np.asarray(r["loss"]["items"]["model_masked_by_position"], float) for r in _runs(results, deep)], axis=0)
        b = np.mean([np.asarray(r["loss"]["items"]["model_masked_by_position"], float) for r in _runs(results, 0)], axis=0)
        diff = (a - b).T  # [positions, sequences]: one cell per position, items paired by sequence
        est, lo, hi = [], [], []
        for t in range(diff.shape[0]):
            pd = paired_difference(diff[t], n_boot=500)
            est.append(pd.estimate)
            lo.append(pd.ci_low)
            hi.append(pd.ci_high)
        t = np.arange(1, diff.shape[0] + 1)
        axes[1].plot(t, est, color="C3")
        axes[1].fill_between(t, lo, hi, color="C3", alpha=0.25, lw=0, label="95% paired bootstrap over sequences (seed means)")
        axes[1].axhline(0, color="k", lw=1)
        axes[1].axvline(EARLY_POSITIONS + 0.5, color="gray", ls=":", lw=1)
        axes[1].set_title(f"D_M={deep} minus D_M=0 (means over seeds), same sequences, no metadata")
        axes[1].set_xlabel("position t")
        axes[1].set_ylabel("loss difference (nats)")
        axes[1].grid(alpha=0.3)
        axes[1].legend(fontsize=7)
    save(fig, path)


def _fig_loss(results, path: Path) -> None:
    plt = pyplot()
    dms = sorted(int(k) for k in results["models"])
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    for off, cond, label, color in ((-0.15, "masked", "masked prefix", "C0"), (0.15, "metadata", "true metadata", "C1")):
        first = True
        for i, d in enumerate(dms):
            runs = [r["loss"][cond] for r in _runs(results, d) if cond in r["loss"]]
            if not runs:
                continue
            xs = i + off + 0.06 * (np.arange(len(runs)) - (len(runs) - 1) / 2)
            ax.errorbar(xs, [r["excess_loss"] for r in runs], yerr=[1.96 * r["excess_loss_se"] for r in runs], fmt="o", color=color, capsize=3,
                        label=f"model minus Bayes, {label} (one point per seed)" if first else None)
            first = False
    ax.axhline(0, color="k", lw=1)
    ax.axhline(REGIME_EXCESS_LOSS, color="gray", ls=":", lw=1, label=f"regime bound ({REGIME_EXCESS_LOSS})")
    ax.set_xticks(np.arange(len(dms)), [f"D_M={d}" for d in dms])
    ax.set_ylabel("excess loss (nats per scored token, 95% CI)")
    ax.set_title("Held-out loss above the Bayes bound")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    save(fig, path)


# ---------------------------------------------------------------------- writing
def _strip_items(obj: Any) -> Any:
    """results.json keeps summaries; per-item arrays stay in evals/dm*.json."""
    if isinstance(obj, dict):
        # Per-item arrays go; scalars named "items" (a difference's item count) stay.
        return {k: _strip_items(v) for k, v in obj.items() if k not in ("items", "probe_correct", "probe_groups") or not isinstance(v, (list, dict))}
    if isinstance(obj, list):
        return [_strip_items(v) for v in obj]
    return obj


def write_report(out: Path, results: dict[str, Any]) -> None:
    verdicts = findings(results)
    results["findings"] = [v.to_dict() for v in verdicts]
    results["regime"] = regime(results)
    results["probe_cells"] = probe_cells(results, min(int(k) for k in results["models"]))
    _fig_verdicts(verdicts, out / "verdicts.png")
    _fig_probing(results, out / "probing.png")
    _fig_grammar(results, out / "grammar_accuracy.png")
    _fig_loss(results, out / "loss.png")
    _fig_loss_by_position(results, out / "loss_by_position.png")
    (out / "results.json").write_text(json.dumps(_strip_items(results), indent=1, default=str))
    (out / "report.md").write_text(render_markdown(results, verdicts))
    (out / "verdicts.txt").write_text(verdict_table(verdicts, results["regime"]))
    (out / "readme_summary.md").write_text(readme_summary(json.loads((out / "results.json").read_text())))


def readme_summary(r: dict[str, Any]) -> str:
    """The README's paragraph on the reference run, generated from results.json alone (a test keeps them equal)."""
    reg = r.get("regime") or {}
    lines = [f"**Reference `{r['preset']}` run** (full report in `docs/results/pcfg-study-{r['preset']}/`; this text is generated from its "
             "`results.json`)."]
    if reg:
        lines[0] += (f" The D_M = 0 model's held-out masked loss is {reg['excess_loss']:.4f} nats/token above Bayes "
                     f"({'meets' if reg['loss_ok'] else 'misses'} the bound {REGIME_EXCESS_LOSS}) and its probes reach "
                     f"{_pct(reg['probe_share_of_bayes_margin'])} of the Bayes margin over chance on {reg['cells']} informative cells "
                     f"({'meets' if reg['probe_ok'] else 'misses'} the bound {REGIME_PROBE_SHARE:.0%}); means over its {reg.get('runs', 1)} "
                     "training runs.")
    lines += ["", f"Training seeds per D_M: {', '.join(map(str, r.get('training_seeds', [r['seed']])))}. Intervals carry the item and the seed "
              "spread (t intervals; `studies/stats.py`).", "",
              "| verdict | finding | difference (95% CI) | seeds, seed SD, item SE | MDE | SESOI / margin |", "|---|---|---|---|---|---|"]
    for f in r["findings"]:
        d = f.get("difference") or {}
        ok = d.get("estimate") is not None and d["estimate"] == d["estimate"] and d.get("ci_low") == d.get("ci_low")
        diff = f"{d['estimate']:+.4f} ({d['ci_low']:+.4f}, {d['ci_high']:+.4f}) {f['units']}" if ok else "—"
        lines.append(f"| **{f['verdict']}** | {f['finding']} | {diff} | {seed_note(d)} | {d['mde']:.4f} | {f['threshold']:.4f} |" if ok
                     else f"| **{f['verdict']}** | {f['finding']} | — | — | — | {f['threshold']:.4f} |")
    return "\n".join(lines) + "\n"


def verdict_table(verdicts: list[Verdict], reg: dict[str, Any] | None) -> str:
    lines = ["PCFG study verdicts (paired over items, 95% intervals over items and training seeds):"]
    for v in verdicts:
        lines.append(f"  {v.verdict.upper():<15} {v.finding}\n  {'':<15} {v.summary()}")
    if reg:
        lines.append(f"  regime of the D_M=0 model: excess loss {reg['excess_loss']:.4f} nats/token ({'meets' if reg['loss_ok'] else 'misses'} <= "
                     f"{REGIME_EXCESS_LOSS}); probes reach {_pct(reg['probe_share_of_bayes_margin'])} of the Bayes margin on {reg['cells']} informative cells "
                     f"({'meets' if reg['probe_ok'] else 'misses'} >= {REGIME_PROBE_SHARE:.0%}); means over {reg.get('runs', 1)} runs "
                     f"(per run: excess {', '.join(f'{x:.4f}' for x in reg.get('excess_loss_per_run', []))}; probe share "
                     f"{', '.join(_pct(x) for x in reg.get('probe_share_per_run', []))})")
    return "\n".join(lines) + "\n"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.0%}"


def render_markdown(r: dict[str, Any], verdicts: list[Verdict]) -> str:
    runs = {int(k): v for k, v in r["models"].items()}  # D_M -> every training run's evaluation
    dms = sorted(runs)
    b = r["bayes"]
    cfg = r["preset_config"]
    L = b["lengths"]
    lines = [f"# PCFG metadata-conditioning study — preset `{r['preset']}`", "",
             f"Grammar: {r['grammar']}. Model size `{cfg['model_size']}`, {cfg['max_steps']} steps × {cfg['batch_size']} sequences per run; "
             f"{cfg.get('seeds', 1)} training runs per D_M (seeds {', '.join(map(str, r.get('training_seeds', [r['seed']])))}: initialization and data "
             "order); half of the training sequences show their metadata.", "", "## Findings", "",
             "| verdict | finding | test | difference (95% CI) | seeds, seed SD, item SE | MDE | SESOI / margin | cells | why |",
             "|---|---|---|---|---|---|---|---|---|"]
    for v in verdicts:
        d = v.difference
        ok = bool(d) and np.isfinite(d["estimate"]) and np.isfinite(d["ci_low"])
        diff = "—" if not ok else f"{d['estimate']:+.4f} ({d['ci_low']:+.4f}, {d['ci_high']:+.4f}), n={d['items']}"
        mde = "—" if not ok else f"{d['mde']:.4f}"
        cells = ", ".join(v.cells) if v.cells else "all"
        lines.append(f"| **{v.verdict}** | {v.finding} | {v.test} | {diff} {v.units} | {seed_note(d) if ok else '—'} | {mde} | {v.threshold:.4f} | {cells} | "
                     f"{v.reason} |")
    lines += ["", "![verdicts](verdicts.png)", "",
              "Every difference pairs two models on the same items (sequences, probe test sequences or prompts). Its interval adds the item "
              "spread (bootstrap over items of the seed-averaged difference) and the seed spread (each arm's statistic across its training "
              "runs), a t interval with the seeds' degrees of freedom (`studies/stats.py`). A between-model claim with one run per arm "
              "reads inconclusive. Superiority: reproduced when the interval excludes 0 in the paper's direction and is not wholly inside "
              "±SESOI (the smallest effect of interest); not reproduced when it is wholly inside ±SESOI or excludes the SESOI; "
              "non-inferiority: reproduced when the whole interval lies within the margin. MDE: the difference this test detects with 80% "
              "power. Thresholds, their sources and cell rules are fixed in `studies/pcfg/report.py`, set in commit "
              f"{THRESHOLDS_COMMIT} before this run.", "", "Sources of the smallest effects of interest and margins:", ""]
    lines += [f"- {v.finding}: {v.threshold:.4f} {v.units} — {v.source}" for v in verdicts]
    lines += [""]
    reg = r.get("regime")
    if reg:
        lines += ["## Is the D_M=0 model in the paper's regime?", "",
                  f"- Held-out masked loss {reg['excess_loss']:.4f} nats/token above Bayes (mean of {reg.get('runs', 1)} runs: "
                  f"{', '.join(f'{x:.4f}' for x in reg.get('excess_loss_per_run', []))}): **{'meets' if reg['loss_ok'] else 'misses'}** the bound "
                  f"{REGIME_EXCESS_LOSS}.",
                  f"- Probes reach {_pct(reg['probe_share_of_bayes_margin'])} of the Bayes margin over chance on {reg['cells']} informative cells "
                  f"(per run: {', '.join(_pct(x) for x in reg.get('probe_share_per_run', []))}): "
                  f"**{'meets' if reg['probe_ok'] else 'misses'}** the bound {REGIME_PROBE_SHARE:.0%}.", ""]
    lines += ["## Training", "", "| D_M | seed | parameters | steps | input tokens | wall time (s) | train loss, last 10% of steps | "
              "held-out loss (masked / metadata) | hardware |", "|---|---|---|---|---|---|---|---|---|"]
    for d in dms:
        for t, run in zip(r["training"][str(d)], runs[d]):
            lo = run["loss"]
            held = f"{lo['masked']['model_loss']:.4f}" + (f" / {lo['metadata']['model_loss']:.4f}" if "metadata" in lo else "")
            lines.append(f"| {d} | {t.get('seed', r['seed'])} | {t['parameters']:,} | {t['steps']} | {t['tokens']['input_tokens']:,} | "
                         f"{t['wall_time_seconds']} | {t['final_window_train_loss']:.4f} | {held} | {t['hardware']} |")
    lines += ["", "The training loss mixes sequences with and without metadata; the held-out losses separate them.", "",
              "## Next-token loss (nats per terminal/`<eos>`, held-out)", "", f"Unigram baseline: {b['unigram_loss']:.4f}.", "",
              "| D_M | seed | masked: model | masked: Bayes | masked: excess | excess at t <= 10 | metadata: model | metadata: Bayes | metadata: excess "
              "| gain from metadata (model / Bayes) |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for d, run in ((d, run) for d in dms for run in runs[d]):
        lo = run["loss"]
        m = lo["masked"]
        early = m.get("excess_early")
        row = (f"| {d} | {run.get('training_seed', r['seed'])} | {m['model_loss']:.4f} | {m['bayes_loss']:.4f} | {m['excess_loss']:.4f} ± "
               f"{m['excess_loss_se']:.4f} | {'—' if early is None else f'{early:.4f}'} |")
        if "metadata" in lo:
            t, g = lo["metadata"], lo["metadata_gain"]
            row += f" {t['model_loss']:.4f} | {t['bayes_loss']:.4f} | {t['excess_loss']:.4f} ± {t['excess_loss_se']:.4f} | {g['model']:+.4f} / {g['bayes']:+.4f} |"
        else:
            row += " — | — | — | — |"
        lines.append(row)
    lines += ["", "![loss](loss.png)", "", "![loss by position](loss_by_position.png)", "",
              "## Probing the metadata (test accuracy on prompts the probe never saw)", "",
              "Layer and L2 chosen by grouped cross-validation inside the probe's train split; `last` is the last layer. Bayes is scored on "
              "the same test items. Cells marked * enter verdicts (informative).", ""]
    cells = {(c["level"], c["li"]): c for c in r["probe_cells"]}
    for d in range(len(b["chance"])):
        lines += [f"Level d={d} (chance {b['chance'][d]:.2f})", "", "| model | " + " | ".join(f"L={x}" for x in L) + " |", "|---|" + "---|" * len(L)]
        for dm, run in ((dm, run) for dm in dms for run in runs[dm]):
            row = run["probing"]["levels"][d]
            lines.append(f"| D_M={dm}, seed {run.get('training_seed', r['seed'])} | "
                         + " | ".join(f"{c['test_accuracy']:.3f} (last {c['last_layer_accuracy']:.3f})" if c else "—" for c in row) + " |")
        lines.append("| Bayes | " + " | ".join((f"{cells[(d, li)]['bayes']:.3f}{'*' if cells[(d, li)]['informative'] else ''}" if (d, li) in cells else "—")
                                             for li in range(len(L))) + " |")
        lines.append("| left out because | " + " | ".join((cells[(d, li)]["why_not"] or "") if (d, li) in cells else "" for li in range(len(L))) + " |")
        lines.append("")
    lines += ["![probing](probing.png)", "", "## Grammar accuracy (CYK acceptance of prompt + sampled continuation)", ""]
    gl = [row["L"] for row in runs[dms[0]][0]["grammar_masked"]["rows"] if row]
    lines += ["| model | prefix | " + " | ".join(f"L={x}" for x in gl) + " |", "|---|---|" + "---|" * len(gl)]
    for dm, run in ((dm, run) for dm in dms for run in runs[dm]):
        for key, name in (("grammar_masked", "masked"), ("grammar_metadata", "true metadata")):
            if key in run:
                cs = {row["L"]: row for row in run[key]["rows"] if row}
                lines.append(f"| D_M={dm}, seed {run.get('training_seed', r['seed'])} | {name} | "
                             + " | ".join(f"{cs[x]['accuracy']:.2f} (n={cs[x]['n']})" if x in cs else "—" for x in gl) + " |")
    base = b.get("grammar_unigram") or {}
    if base:
        lines.append("| unigram continuations (trivial baseline) | masked | " + " | ".join(f"{base[str(x)]:.2f}" if str(x) in base else "—" for x in gl) + " |")
    lines += ["", f"Grammar verdicts use only lengths where the two models' mean acceptance is at least {GRAMMAR_SIGNAL:.0%}.", "",
              "![grammar accuracy](grammar_accuracy.png)", ""]
    return "\n".join(lines)
