"""The localization study's report: tables, figures and a paired, powered verdict per claim.

Perplexity is compared as bits per byte of the article body (the metadata is context, never scored;
bytes do not depend on the condition). Two models are always scored on the same test articles, so
every claim is a *paired* comparison: per article, the difference of the two models' bits, summed
over articles of a continent and divided by their bytes; continents are the cells, weighted equally,
and the 95% interval comes from a bootstrap over articles (``metacond.eval_tasks.stats``). MCQ
claims pair the same questions. Thresholds below were fixed on 2026-11-25, before the first run of
this design (the paper reports tables, not these effect sizes; they are our reading of "a gain worth
reporting" at this scale):

- a perplexity effect of the paper's size: 0.02 bits/byte (URL-only: 0.01, "part of the gain");
- "no worse" margins: 0.01 bits/byte (under half a percent of the ~2.6 bits/byte of our CPU models; a
  metadata model worse by the reference run's +0.013 to +0.051 bits/byte in every comparison must not
  read "no worse");
- MCQ effect: 0.05 accuracy (questions averaged over option orders).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from metacond.eval_tasks.stats import PairedDifference, Verdict, non_inferiority, paired_difference, superiority

from .grid import CONTINENTS

PPL_EFFECT = 0.02
URL_EFFECT = 0.01
PPL_MARGIN = 0.01
MCQ_EFFECT = 0.05


def _bpb(results: dict[str, Any], run: str, cond: str) -> dict[str, tuple[float, float]]:
    """continent -> (bits per byte, CI half-width) of a run under a condition (for tables)."""
    ev = results["runs"].get(run, {}).get("eval")
    if not ev:
        return {}
    out = {}
    for r in ev["regional"]:
        if r["family"] == "ppl" and r["condition"] == cond and r["metric"] == "bits_per_byte" and r["level"] == "continent":
            hw = (r["ci_high"] - r["ci_low"]) / 2 if r["ci_low"] == r["ci_low"] else 0.0
            out[r["key"]] = (r["value"], hw)
    return out


def _articles(results: dict[str, Any], run: str, cond: str) -> dict[str, tuple[str, float, float]]:
    """article id -> (continent, bits, bytes) of a run under a condition."""
    ev = results["runs"].get(run, {}).get("eval") or {}
    return {i["id"]: (i["continent"], i["nll"] / math.log(2), i["bytes"]) for i in ev.get("items", [])
            if i["family"] == "ppl" and i["condition"] == cond}


def _paired_bpb(pairs: list[tuple[str, dict, dict]]) -> PairedDifference | None:
    """pairs: (continent, articles of model A, articles of model B); the statistic is A minus B in bits/byte on that continent's
    shared articles, continents weighted equally, articles resampled."""
    ids = sorted({i for c, a, b in pairs for i, v in a.items() if v[0] == c and i in b})
    if not ids:
        return None
    col = {i: k for k, i in enumerate(ids)}
    num, den = np.full((len(pairs), len(ids)), np.nan), np.zeros((len(pairs), len(ids)))
    for r, (c, a, b) in enumerate(pairs):
        for i, v in a.items():
            if v[0] == c and i in b:
                num[r, col[i]] = v[1] - b[i][1]
                den[r, col[i]] = v[2]
    return paired_difference(num, den)


def _questions(results: dict[str, Any], path: tuple[str, ...], cond: str, family: str = "mcq") -> dict[str, float]:
    node: Any = results
    for k in path:
        node = (node or {}).get(k)
    return {i["id"]: float(i["acc"]) for i in (node or []) if i["family"] == family and i["condition"] == cond}


def claims(results: dict[str, Any]) -> list[Verdict]:
    size = results["plan"]["preset_config"]["sizes"][-1]
    g_meta, g_none = f"{size}-global-meta", f"{size}-global-nometa"
    present = lambda run, cond: {c for c, *_ in _articles(results, run, cond).values()}  # noqa: E731
    out: list[Verdict] = []
    none_none, meta_full, meta_none = _articles(results, g_none, "none"), _articles(results, g_meta, "full"), _articles(results, g_meta, "none")
    conts = [c for c in CONTINENTS if c in present(g_none, "none")]
    no_data = "no articles scored by both models"
    d = _paired_bpb([(c, none_none, meta_full) for c in conts])
    out.append(superiority("Metadata conditioning lowers perplexity when the metadata is given (global model, metadata vs none)", d, PPL_EFFECT,
                           "bits/byte", informative=d is not None, why_uninformative=no_data, cells=conts))
    d = _paired_bpb([(c, meta_none, none_none) for c in conts])
    out.append(non_inferiority("Without metadata at test time, the metadata-trained global model is no worse than the model trained without",
                               d, PPL_MARGIN, "bits/byte", informative=d is not None, why_uninformative=no_data, cells=conts))
    region_pairs, region_meta_pairs = [], []
    for c in conts:
        rn, rm = _articles(results, f"{size}-region-{c}-nometa", "none"), _articles(results, f"{size}-region-{c}-meta", "full")
        if rn:
            region_pairs.append((c, none_none, rn))
        if rm:
            region_meta_pairs.append((c, meta_full, rm))
    d = _paired_bpb(region_pairs)
    out.append(superiority("Region-specific models beat the same-budget global model on their own region (no metadata)", d, PPL_EFFECT, "bits/byte",
                           informative=d is not None, why_uninformative="no region models", cells=[c for c, *_ in region_pairs]))
    d = _paired_bpb(region_meta_pairs)
    out.append(non_inferiority("With metadata, the global model is no worse than region-specific metadata models in their region", d, PPL_MARGIN,
                               "bits/byte", informative=d is not None, why_uninformative="no region models", cells=[c for c, *_ in region_meta_pairs]))
    loo = [(c, _articles(results, f"{size}-loo-{c}-nometa", "none"), _articles(results, f"{size}-global-nometa", "none")) for c in conts]
    loo = [x for x in loo if x[1]]
    d = _paired_bpb(loo)
    out.append(superiority("A leave-one-out model is worse than the global model on the continent it never saw", d, PPL_EFFECT, "bits/byte",
                           informative=d is not None, why_uninformative="no leave-one-out models", cells=[c for c, *_ in loo]))
    url = _articles(results, f"{size}-global-url", "url")
    d = _paired_bpb([(c, none_none, url) for c in conts]) if url else None
    out.append(superiority("URL-only metadata already gives part of the gain (URL-only model with its URL vs no metadata)", d, URL_EFFECT, "bits/byte",
                           informative=d is not None, why_uninformative="no URL-only model", cells=conts))
    cd = _articles(results, f"{size}-global-meta-cooldown", "none")
    d = _paired_bpb([(c, cd, none_none) for c in conts]) if cd else None
    out.append(non_inferiority("Beyond the paper: after a MeCo cooldown (last 10% without metadata) the model is no worse than the no-metadata model "
                               "when none is given", d, PPL_MARGIN, "bits/byte", informative=d is not None, why_uninformative="no cooldown model",
                               cells=conts))
    mcq = results.get("mcq", {})
    for name, m in (mcq.get("models") or {}).items():
        cond = "full" if m["sft"]["metadata_prefix"] else "none"
        for family, label in (("mcq", "our log-likelihood protocol"), ("official", "the reference's protocol")):
            before = _questions(results, ("mcq", "models", name, "before_items"), cond, family)
            after = _questions(results, ("mcq", "models", name, "after_items"), cond, family)
            ids = sorted(set(before) & set(after))
            d = paired_difference(np.array([after[i] - before[i] for i in ids])) if ids else None
            out.append(superiority(f"Instruction tuning raises localized MCQ accuracy ({name}, {label}, metadata {cond}; questions averaged over 4 option orders)",
                                   d, MCQ_EFFECT, "accuracy", informative=d is not None, why_uninformative="no per-question scores"))
    return out


def figures(results: dict[str, Any], out: Path) -> list[str]:
    from metacond.figures import finish, pyplot, save

    plt = pyplot()
    import numpy as np

    made = []
    names = [n for n in results["runs"] if results["runs"][n].get("eval")]
    if names:
        mat = np.full((len(names), len(CONTINENTS)), np.nan)
        for i, n in enumerate(names):
            cond = "none" if n.endswith("nometa") else results["runs"][n]["run"]["template"]
            v = _bpb(results, n, "full" if cond == "full" else cond)
            for j, c in enumerate(CONTINENTS):
                if c in v:
                    mat[i, j] = v[c][0]
        fig, ax = plt.subplots(figsize=(6.5, 0.35 * len(names) + 1.5), dpi=110)
        im = ax.imshow(mat, aspect="auto", cmap="viridis_r")
        ax.set_xticks(range(len(CONTINENTS)), CONTINENTS)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        for i in range(len(names)):
            for j in range(len(CONTINENTS)):
                if mat[i, j] == mat[i, j]:
                    ax.text(j, i, f"{mat[i, j]:.2f}", ha="center", va="center", fontsize=6, color="w")
        fig.colorbar(im, label="bits per byte (metadata not scored)")
        ax.set_title("In-region vs cross-region perplexity (each model with its own metadata)")
        save(fig, out / "region_matrix.png")
        made.append("region_matrix.png")
    from metacond.eval_tasks.stats import forest_plot

    vs = [v for v in results.get("_verdicts", []) if v.difference and np.isfinite(v.difference["estimate"])]
    if vs:
        fig, axes = plt.subplots(len(vs), 1, figsize=(9, 1.2 * len(vs) + 0.6), dpi=110)
        for ax, v in zip(np.atleast_1d(axes), vs):
            forest_plot(ax, [(v.verdict, v.difference)], threshold=v.threshold, threshold_label="paper's effect" if v.test == "superiority" else "margin")
            ax.set_title(f"{v.finding} [{v.units}; positive = {'paper' if v.test == 'superiority' else 'worse'}]", fontsize=7, loc="left")
        save(fig, out / "paired_differences.png", suptitle="Paired differences (same articles / questions) with 95% bootstrap intervals")
        made.append("paired_differences.png")
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    for n, r in results["runs"].items():
        t = r.get("training", {})
        curve = [p for p in t.get("loss_curve", []) if "loss" in p]
        if not curve or r["run"]["family"] not in ("main", "cooldown") or "region" in n:
            continue
        per_step = t["tokens_seen"]["input_tokens"] / max(1, curve[-1]["step"])
        ax.plot([p.get("num_input_tokens_seen") or p["step"] * per_step for p in curve], [p["loss"] for p in curve], label=n)
    finish(fig, ax, out / "learning_curves.png", xlabel="input tokens", ylabel="training loss (article tokens)", title="Learning curves")
    made.append("learning_curves.png")
    return made


def _strip_items(obj: Any) -> Any:
    """results.json keeps summaries; per-article and per-question scores stay in each run's eval_results.json."""
    if isinstance(obj, dict):
        # Per-item arrays go; scalars named "items" (a difference's item count) stay.
        return {k: _strip_items(v) for k, v in obj.items() if k not in ("items", "before_items", "after_items", "_verdicts") or not isinstance(v, (list, dict))}
    if isinstance(obj, list):
        return [_strip_items(v) for v in obj]
    return obj


def mcq_lines(mcq: dict[str, Any]) -> list[str]:
    """MCQ accuracy before/after instruction tuning beside its trivial baselines (chance, answer-only heuristics)."""
    lines: list[str] = []
    if mcq.get("questions"):
        base = mcq.get("answer_only_baselines") or {}
        lines += ["", f"MCQ: {mcq['questions']} questions from the test split, each asked under 4 option orders. Trivial baselines: chance "
                  f"{mcq.get('chance', 0.25):.2f}" + "".join(f", {k.replace('_', ' ')} option {v:.3f}" for k, v in base.items()) + "."]
        for name, m in (mcq.get("models") or {}).items():
            cond = "full" if m["sft"]["metadata_prefix"] else "none"
            acc = {k: next((r["value"] for r in m[k] if r["family"] == "mcq" and r["condition"] == cond and r["continent"] == "all"), float("nan"))
                   for k in ("before", "after")}
            lines.append(f"- {name} (metadata {cond}): accuracy {acc['before']:.3f} before, {acc['after']:.3f} after instruction tuning.")
    return lines


def readme_summary(results: dict[str, Any]) -> str:
    """The README's paragraph on the reference run, generated from results.json alone (a test keeps them equal)."""
    st = results.get("stage_seconds", {})
    trained = [n for n, r in results["runs"].items() if r["training"]["status"] == "trained"]
    skipped = [n for n, r in results["runs"].items() if r["training"]["status"] != "trained"]
    lines = [f"**Reference `{results['preset']}` run** ({len(trained)} of {len(results['runs'])} runs trained"
             + (f"; {len(skipped)} skipped: the corpus lacks their continent" if skipped else "")
             + f"; stage seconds: {', '.join(f'{k} {v:.0f}' for k, v in st.items())}; full report in `docs/results/localization-study-cpu/`). "
             "Paired verdicts:", ""]
    for c in results["claims"]:
        d = c.get("difference") or {}
        est = d.get("estimate")
        num = (f"{est:+.4f} {c['units']} (95% CI {d['ci_low']:+.4f} to {d['ci_high']:+.4f}, {d['items']} paired items)"
               if est is not None and est == est and d.get("ci_low") == d.get("ci_low") else "no interval")
        lines.append(f"- **{c['verdict']}**: {c['finding']} — {num}; {c['reason']}.")
    lines += mcq_lines(results.get("mcq", {}))
    return "\n".join(lines) + "\n"


def write_report(results: dict[str, Any], out: Path) -> None:
    verdicts = claims(results)
    results["_verdicts"] = verdicts
    results["claims"] = [v.to_dict() for v in verdicts]
    results["figures"] = figures(results, out)
    (out / "results.json").write_text(json.dumps(_strip_items(results), indent=1, default=str))
    (out / "readme_summary.md").write_text(readme_summary(json.loads((out / "results.json").read_text())))
    lines = [f"# Localization study ({results['preset']} preset)", "", f"Corpus `{results['input']}`; "
             f"{len(results['runs'])} runs ({results['plan']['paper_runs']} from the paper's grid); stage seconds {results['stage_seconds']}.", "",
             "## Claims", "", "| verdict | claim | test | difference (95% CI) | MDE | paper's effect / margin | cells | why |",
             "|---|---|---|---|---|---|---|---|"]
    for v in verdicts:
        d = v.difference
        ok = d is not None and np.isfinite(d["estimate"])
        diff = f"{d['estimate']:+.4f} ({d['ci_low']:+.4f}, {d['ci_high']:+.4f}), n={d['items']}" if ok else "—"
        lines.append(f"| **{v.verdict}** | {v.finding} | {v.test} | {diff} {v.units} | {d['mde']:.4f} | {v.threshold} | {', '.join(v.cells) or 'all'} | {v.reason} |"
                     if ok else f"| **{v.verdict}** | {v.finding} | {v.test} | — | — | {v.threshold} | — | {v.reason} |")
    lines += ["", "Every difference pairs two models on the same test articles (or questions): per-article bits summed per continent over "
              "its bytes, continents weighted equally, articles resampled (`eval_tasks/stats.py`). Superiority: reproduced when the interval "
              "excludes 0 in the paper's direction; non-inferiority: reproduced when the whole interval lies within the margin. Thresholds "
              "are fixed in `eval_tasks/localization/report.py`."]
    lines += ["", "## Runs", "", "| run | family | dataset | status | final train loss | tokens | wall s |", "|---|---|---|---|---|---|---|"]
    for n, r in results["runs"].items():
        t = r["training"]
        lines.append(f"| {n} | {r['run']['family']} | {r['run']['experiment']}/{r['run']['template']} | {t['status']}{': ' + t['reason'] if 'reason' in t else ''} | "
                     f"{t.get('final_train_loss', float('nan')) or float('nan'):.4f} | {t.get('tokens_seen', {}).get('input_tokens', 0):,} | {t.get('wall_time_seconds', '')} |")
    lines += ["", "## Per-continent bits per byte (metadata not scored)", "", "| run | condition | " + " | ".join(CONTINENTS) + " |",
              "|---|---|" + "---|" * len(CONTINENTS)]
    for n, r in results["runs"].items():
        for cond in ("none", r["run"]["template"] if r["run"]["template"] != "none" else "full"):
            v = _bpb(results, n, cond)
            if v:
                lines.append(f"| {n} | {cond} | " + " | ".join(f"{v[c][0]:.3f} ± {v[c][1]:.3f}" if c in v else "—" for c in CONTINENTS) + " |")
    mcq = mcq_lines(results.get("mcq", {}))
    if mcq:
        lines += ["", "## Localized MCQ"] + mcq
    lines += ["", "Figures: " + ", ".join(f"![{f}]({f})" for f in results["figures"]), ""]
    (out / "report.md").write_text("\n".join(lines))
