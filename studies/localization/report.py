"""The localization study's report: regime gates, tables, figures and a paired, seeded verdict per claim.

Perplexity is compared as bits per byte of the article body (the metadata is context, never scored;
bytes do not depend on the condition). Two models are always scored on the same test articles, so
every claim is a *paired* comparison: per article, the difference of the two models' bits, summed
over articles of a continent and divided by their bytes; continents are the cells, weighted equally.
Every arm is trained with several seeds, and the interval adds the article spread (bootstrap) and the
seed spread (``metacond.studies.stats.seeded_difference``); an arm with one run gives no definite
word on a between-model claim. MCQ claims pair the same questions.

Regime gates (fixed 2026-12-02, before the seeded reference run):
- *is it a language model*: the global no-metadata arm (mean over seeds) must score fewer bits/byte than
  the smoothed token bigram on the same articles and bytes (``ngram.py``); otherwise every perplexity
  claim reads "inconclusive: out of regime";
- *what the metadata can buy*: the bigram's gain from mixing in the statistics of the article's own
  metadata value is printed beside every metadata claim;
- *does it know anything*: an MCQ claim needs the base model's accuracy (before tuning, seed mean) above
  the strongest answer-only baseline (or chance) by ``MCQ_GATE_MARGIN``; otherwise "inconclusive: at chance".

Smallest effects of interest (fixed 2026-12-02, before the seeded reference run), from the paper's own
numbers (iamshnoo/metadata_localization, ``results/perplexity_eval.csv``: the 1B global model's test
perplexity 9.963 without metadata, 9.187 with it, i.e. 3.5% less cross-entropy per token):
- perplexity claims: half the paper's relative gain, as a share of the no-metadata arm's bits/byte
  (a relative size does not depend on the tokenizer); "no worse" margins the same size;
- "part of the gain" from coarser metadata (URL only in the paper, continent only on a corpus without
  URLs): half of that;
- MCQ: 0.05 accuracy (the paper's instruction-tuned models score 0.62 against chance 0.25 on its
  800-question set, ``results/qa_metacul_eval.csv``; 0.05 is far below that gain).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from metacond.studies.stats import PairedDifference, Verdict, non_inferiority, paired_difference, seed_note, seeded_difference, superiority

from .grid import CONTINENTS

PAPER_PPL_NONE, PAPER_PPL_META = 9.963, 9.187
PAPER_SOURCE = "iamshnoo/metadata_localization results/perplexity_eval.csv (1B global: perplexity 9.963 without metadata, 9.187 with)"
# Half the paper's relative cross-entropy reduction: 0.5 * ln(9.963 / 9.187) / ln(9.963) = 1.76% of the baseline's bits/byte.
PPL_SESOI_SHARE = 0.5 * math.log(PAPER_PPL_NONE / PAPER_PPL_META) / math.log(PAPER_PPL_NONE)
PART_SHARE = 0.5
MCQ_EFFECT = 0.05
MCQ_GATE_MARGIN = 0.05
MCQ_SOURCE = "ours, far below the paper's instruction-tuned gain (0.62 vs chance 0.25, iamshnoo/metadata_localization results/qa_metacul_eval.csv)"
NGRAM_GATE = "bigram"
THRESHOLDS_COMMIT = "72d49a7"  # SESOIs, sources and gates fixed here, before the seeded reference run


def _runs_of(results: dict[str, Any], arm: str) -> list[str]:
    """The trained runs of an arm, in seed order."""
    rs = [(r["run"].get("seed", 0), n) for n, r in results["runs"].items()
          if r["run"].get("arm", n) == arm and r.get("training", {}).get("status", "trained") == "trained" and r.get("eval")]
    return [n for _, n in sorted(rs)]


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


def paired_bpb(results: dict[str, Any], cells: list[tuple[str, str, str, str, str]]) -> PairedDifference | None:
    """cells: (continent, arm A, condition A, arm B, condition B). The statistic is A minus B in bits/byte on the
    continent's articles that every run of both arms scored, continents weighted equally; runs of an arm are its seeds.
    When every cell compares an arm with itself (two conditions), the difference is within-model and pools seeds."""
    if not cells:
        return None
    runs = [(_runs_of(results, a), _runs_of(results, b)) for _, a, _, b, _ in cells]
    if any(not ra or not rb for ra, rb in runs):
        return None
    scores = [([_articles(results, n, ca) for n in ra], [_articles(results, n, cb) for n in rb]) for (_, _, ca, _, cb), (ra, rb) in zip(cells, runs)]
    ids_per_cell = []
    for (c, *_), (sa, sb) in zip(cells, scores):
        common = set.intersection(*[set(k for k, v in x.items() if v[0] == c) for x in sa + sb])
        ids_per_cell.append(common)
    ids = sorted(set().union(*ids_per_cell))
    if not ids:
        return None
    col = {i: k for k, i in enumerate(ids)}
    n_a, n_b = min(len(ra) for ra, _ in runs), min(len(rb) for _, rb in runs)
    A = [np.full((len(cells), len(ids)), np.nan) for _ in range(n_a)]
    B = [np.full((len(cells), len(ids)), np.nan) for _ in range(n_b)]
    den = np.zeros((len(cells), len(ids)))
    for r, ((sa, sb), common) in enumerate(zip(scores, ids_per_cell)):
        for i in common:
            den[r, col[i]] = sa[0][i][2]
            for s in range(n_a):
                A[s][r, col[i]] = sa[s][i][1]
            for s in range(n_b):
                B[s][r, col[i]] = sb[s][i][1]
    if all(a == b for _, a, _, b, _ in cells) and n_a == n_b:
        return seeded_difference([a - b for a, b in zip(A, B)], None, den)
    return seeded_difference(A, B, den)


def ngram_gain(results: dict[str, Any], field: str, order: str = NGRAM_GATE) -> PairedDifference | None:
    """What the metadata can buy a counting model: the n-gram's bits/byte without minus with the field's statistics."""
    items = (results.get("ngram") or {}).get("items") or []
    conts = sorted({i["continent"] for i in items})
    if not items or f"{order}+{field}" not in items[0]["bits"]:
        return None
    num, den = np.full((len(conts), len(items)), np.nan), np.zeros((len(conts), len(items)))
    for k, i in enumerate(items):
        r = conts.index(i["continent"])
        num[r, k] = i["bits"][order] - i["bits"][f"{order}+{field}"]
        den[r, k] = i["bytes"]
    return paired_difference(num, den)


def _arm_bpb(results: dict[str, Any], arm: str, cond: str) -> tuple[float, float] | None:
    """(mean over seeds, SD over seeds) of an arm's bits/byte, continents weighted equally, on the articles it scored."""
    vals = []
    for n in _runs_of(results, arm):
        a = _articles(results, n, cond)
        conts = sorted({v[0] for v in a.values()})
        if conts:
            vals.append(float(np.mean([sum(v[1] for v in a.values() if v[0] == c) / sum(v[2] for v in a.values() if v[0] == c) for c in conts])))
    if not vals:
        return None
    return float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else float("nan")


def regime(results: dict[str, Any]) -> dict[str, Any]:
    """The gates: the no-metadata model against the n-gram lines; the MCQ base models against the answer-only baselines."""
    size = results["plan"]["preset_config"]["sizes"][-1]
    arm = f"{size}-global-nometa"
    # The lines on exactly the articles the model scored (an evaluation --limit scores a subset).
    scored = set.intersection(*[set(_articles(results, n, "none")) for n in _runs_of(results, arm)]) if _runs_of(results, arm) else set()
    items = [i for i in (results.get("ngram") or {}).get("items") or [] if i["id"] in scored]
    ng = _lines(items)
    model = _arm_bpb(results, arm, "none")
    out: dict[str, Any] = {"ngram_bits_per_byte": ng, "model_bits_per_byte": None if model is None else model[0],
                           "model_seed_sd": None if model is None else model[1], "gate_line": NGRAM_GATE}
    out["language_model"] = bool(model is not None and NGRAM_GATE in ng and model[0] < ng[NGRAM_GATE])
    out |= _tokens_to_regime(results, arm, ng.get(NGRAM_GATE))
    out["why"] = ("no n-gram baseline or no no-metadata model" if model is None or NGRAM_GATE not in ng else
                  f"the global no-metadata model scores {model[0]:.4f} bits/byte against the {NGRAM_GATE}'s {ng[NGRAM_GATE]:.4f} on the same articles")
    mcq = results.get("mcq") or {}
    base = max([mcq.get("chance", 0.25)] + list((mcq.get("answer_only_baselines") or {}).values()))
    accs = [_accuracy(m["before"], m.get("condition", "none") if m["sft"]["metadata_prefix"] else "none") for m in (mcq.get("models") or {}).values()]
    accs = [a for a in accs if a == a]
    out["mcq_base_accuracy"] = float(np.mean(accs)) if accs else None
    out["mcq_strongest_baseline"] = base
    out["mcq_knows"] = bool(accs and np.mean(accs) >= base + MCQ_GATE_MARGIN)
    return out


def _tokens_to_regime(results: dict[str, Any], arm: str, line: float | None) -> dict[str, Any]:
    """Where the arm's learning curve (training loss in test bits/byte: nats/token x test tokens/byte / ln 2) first crosses the
    n-gram line, per seed; None when it never does within the run."""
    items = (results.get("ngram") or {}).get("items") or []
    if line is None or not items:
        return {}
    tpb = sum(i["tokens"] for i in items) / sum(i["bytes"] for i in items)
    crossed, last = [], []
    for n in _runs_of(results, arm):
        t = results["runs"][n]["training"]
        curve = [(p.get("num_input_tokens_seen"), p["loss"] * tpb / math.log(2)) for p in t.get("loss_curve", []) if "loss" in p]
        if not curve:
            continue
        last.append({"input_tokens": t["tokens_seen"]["input_tokens"], "train_bits_per_byte": curve[-1][1]})
        crossed.append(next((tok for tok, v in curve if v < line), None))
    return {"tokens_to_regime": crossed, "curve_end": last}


def _lines(items: list[dict[str, Any]]) -> dict[str, float]:
    from .ngram import summarize

    return summarize(items) if items else {}


def _accuracy(rows: list[dict[str, Any]], cond: str, family: str = "mcq") -> float:
    return next((r["value"] for r in rows if r["family"] == family and r["condition"] == cond and r["continent"] == "all"), float("nan"))


def _questions(m: dict[str, Any], key: str, cond: str, family: str = "mcq") -> dict[str, float]:
    return {i["id"]: float(i["acc"]) for i in (m.get(key) or []) if i["family"] == family and i["condition"] == cond}


def claims(results: dict[str, Any]) -> list[Verdict]:
    size = results["plan"]["preset_config"]["sizes"][-1]
    meta_t = results.get("meta_template", "full")
    g_meta, g_none = f"{size}-global-meta", f"{size}-global-nometa"
    reg = results.get("regime") or regime(results)
    conts = [c for c in CONTINENTS if any(v[0] == c for n in _runs_of(results, g_none) for v in _articles(results, n, "none").values())]
    base = _arm_bpb(results, g_none, "none")
    sesoi = PPL_SESOI_SHARE * (base[0] if base else 1.0)
    src = f"half the paper's relative gain ({PPL_SESOI_SHARE:.2%} of the no-metadata arm's bits/byte): {PAPER_SOURCE}"
    lm_ok, lm_why = reg["language_model"], f"out of regime: {reg['why']}"
    gains = {f: ngram_gain(results, f) for f in ("country", "continent")}
    buy = {f: ({"ngram_gain": g.estimate, "ngram_gain_ci": [g.ci_low, g.ci_high]} if g else {}) for f, g in gains.items()}
    meta_field = "continent" if meta_t == "continent" else "country"
    out: list[Verdict] = []

    def ppl(finding: str, cells, threshold: float, source: str, kind=superiority, missing="no models", **details):
        d = paired_bpb(results, cells)
        gate = lm_ok if d is not None else False
        why = missing if d is None else lm_why
        return kind(finding, d, threshold, "bits/byte", source=source, informative=gate, why_uninformative=why, cells=[c[0] for c in cells], **details)

    out.append(ppl("Metadata conditioning lowers perplexity when the metadata is given (global model, metadata vs none)",
                   [(c, g_none, "none", g_meta, meta_t) for c in conts], sesoi, src, **buy[meta_field]))
    out.append(ppl("Given its metadata, the metadata-trained model scores better than without it (same model)",
                   [(c, g_meta, "none", g_meta, meta_t) for c in conts], sesoi, src, **buy[meta_field]))
    out.append(ppl("Without metadata at test time, the metadata-trained global model is no worse than the model trained without",
                   [(c, g_meta, "none", g_none, "none") for c in conts], sesoi, src + "; the same size as a margin", kind=non_inferiority))
    region = [(c, g_none, "none", f"{size}-region-{c}-nometa", "none") for c in conts if _runs_of(results, f"{size}-region-{c}-nometa")]
    out.append(ppl("Region-specific models beat the same-budget global model on their own region (no metadata)", region, sesoi, src,
                   missing="no region models in this preset"))
    region_m = [(c, g_meta, meta_t, f"{size}-region-{c}-meta", meta_t) for c in conts if _runs_of(results, f"{size}-region-{c}-meta")]
    out.append(ppl("With metadata, the global model is no worse than region-specific metadata models in their region", region_m, sesoi, src,
                   kind=non_inferiority, missing="no region models in this preset"))
    loo = [(c, f"{size}-loo-{c}-nometa", "none", g_none, "none") for c in conts if _runs_of(results, f"{size}-loo-{c}-nometa")]
    out.append(ppl("A leave-one-out model is worse than the global model on the continent it never saw", loo, sesoi, src,
                   missing="no leave-one-out models in this preset"))
    for n, r in results["runs"].items():
        run = r["run"]
        if run["family"] != "ablation" or run.get("seed", 0) != 0:
            continue
        f = "continent" if run["template"] == "continent" else ("country" if run["template"] == "country" else None)
        out.append(ppl(f"Coarser metadata ({run['template']} only) already gives part of the gain (its model with it vs no metadata)",
                       [(c, g_none, "none", run.get("arm", n), run["template"]) for c in conts], PART_SHARE * sesoi,
                       f"half the perplexity SESOI: 'part of the gain' (the paper's URL-only model gains as much as full metadata; {PAPER_SOURCE})",
                       **(buy[f] if f else {})))
    out.append(ppl("Beyond the paper: after a MeCo cooldown (last 10% without metadata) the model is no worse than the no-metadata model "
                   "when none is given", [(c, f"{size}-global-meta-cooldown", "none", g_none, "none") for c in conts], sesoi,
                   src + "; the same size as a margin", kind=non_inferiority, missing="no cooldown model"))
    out += mcq_claims(results, reg)
    return out


def mcq_claims(results: dict[str, Any], reg: dict[str, Any]) -> list[Verdict]:
    """Instruction tuning raises MCQ accuracy: per arm and protocol, after minus before on the same questions, seeds pooled."""
    mcq = results.get("mcq") or {}
    by_arm: dict[str, list[dict[str, Any]]] = {}
    for name, m in sorted((mcq.get("models") or {}).items(), key=lambda kv: kv[1].get("seed", 0)):
        by_arm.setdefault(m.get("arm", name), []).append(m)
    at_chance = (f"at chance: the base models' accuracy {reg.get('mcq_base_accuracy') or float('nan'):.3f} is not {MCQ_GATE_MARGIN} above the "
                 f"strongest answer-only baseline or chance ({reg.get('mcq_strongest_baseline') or float('nan'):.3f})")
    out = []
    for arm, ms in by_arm.items():
        meta_cond = ms[0].get("condition", "full") if ms[0]["sft"]["metadata_prefix"] else "none"
        for family, label in (("mcq", "our log-likelihood protocol"), ("official", "the reference's protocol")):
            # The reference's protocol knows two conditions (none, full); another template's model is asked without metadata there.
            cond = meta_cond if family == "mcq" or meta_cond in ("none", "full") else "none"
            diffs = []
            for m in ms:
                before, after = _questions(m, "before_items", cond, family), _questions(m, "after_items", cond, family)
                ids = sorted(set(before) & set(after))
                if ids:
                    diffs.append((ids, np.array([after[i] - before[i] for i in ids])))
            common = sorted(set.intersection(*[set(i) for i, _ in diffs])) if diffs else []
            runs = [np.array([dict(zip(i, d))[q] for q in common]) for i, d in diffs]
            d = seeded_difference(runs) if common else None
            out.append(superiority(f"Instruction tuning raises localized MCQ accuracy ({arm}, {label}, metadata {cond}; questions averaged over 4 option orders)",
                                   d, MCQ_EFFECT, "accuracy", source=MCQ_SOURCE, informative=d is not None and reg.get("mcq_knows", False),
                                   why_uninformative="no per-question scores" if d is None else at_chance))
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
            t = results["runs"][n]["run"]["template"]
            v = _bpb(results, n, "none" if t == "none" else t)
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
    from metacond.studies.stats import forest_plot

    vs = [v for v in results.get("_verdicts", []) if v.difference and np.isfinite(v.difference["estimate"])]
    if vs:
        fig, axes = plt.subplots(len(vs), 1, figsize=(9, 1.2 * len(vs) + 0.6), dpi=110)
        for ax, v in zip(np.atleast_1d(axes), vs):
            forest_plot(ax, [(v.verdict, v.difference)], threshold=v.threshold, threshold_label="SESOI" if v.test == "superiority" else "margin",
                        equivalence=v.test == "superiority")
            ax.set_title(f"{v.finding} [{v.units}; positive = {'paper' if v.test == 'superiority' else 'worse'}; {seed_note(v.difference)}]",
                         fontsize=6, loc="left")
        save(fig, out / "paired_differences.png", suptitle="Paired differences (same articles / questions), 95% intervals over items and seeds")
        made.append("paired_differences.png")
    # Learning curves in the units of the regime lines: training loss (nats/token) over the test articles' bytes per token.
    ng = results.get("ngram") or {}
    tpb = sum(i["tokens"] for i in ng.get("items", [])) / max(1.0, sum(i["bytes"] for i in ng.get("items", []))) if ng.get("items") else None
    fig, ax = plt.subplots(figsize=(7.5, 4.0), dpi=110)
    for k, (n, r) in enumerate(results["runs"].items()):
        t = r.get("training", {})
        curve = [p for p in t.get("loss_curve", []) if "loss" in p]
        if not curve or r["run"]["family"] not in ("main", "cooldown", "ablation") or "region" in n or "loo" in n:
            continue
        per_step = t["tokens_seen"]["input_tokens"] / max(1, curve[-1]["step"])
        y = [p["loss"] * tpb / math.log(2) if tpb else p["loss"] for p in curve]
        ax.plot([p.get("num_input_tokens_seen") or p["step"] * per_step for p in curve], y, label=n, lw=1, color=f"C{k % 10}")
    if tpb:
        for name, v in (ng.get("bits_per_byte") or {}).items():
            if "+" not in name:
                ax.axhline(v, ls="--", lw=1, color="k" if name == NGRAM_GATE else "gray", label=f"{name} on the test articles ({v:.3f})")
        reg = results.get("regime") or {}
        if reg.get("model_bits_per_byte"):
            ax.axhline(reg["model_bits_per_byte"], ls=":", lw=1.2, color="C3", label=f"no-metadata model on the test articles ({reg['model_bits_per_byte']:.3f})")
    ax.legend(fontsize=5, ncol=2)
    finish(fig, ax, out / "learning_curves.png", xlabel="input tokens",
           ylabel="training loss, bits/byte (via test bytes per token)" if tpb else "training loss (nats/token)",
           title="Learning curves against the n-gram lines")
    made.append("learning_curves.png")
    return made


def _strip_items(obj: Any) -> Any:
    """results.json keeps summaries; per-article and per-question scores stay in each run's eval_results.json."""
    if isinstance(obj, dict):
        # Per-item arrays go; scalars named "items" (a difference's item count) stay.
        return {k: _strip_items(v) for k, v in obj.items()
                if k not in ("items", "before_items", "after_items", "_verdicts", "loss_curve") or not isinstance(v, (list, dict))}
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
            cond = m.get("condition", "full") if m["sft"]["metadata_prefix"] else "none"
            acc = {k: _accuracy(m[k], cond) for k in ("before", "after")}
            lines.append(f"- {name} (metadata {cond}): accuracy {acc['before']:.3f} before, {acc['after']:.3f} after instruction tuning.")
    return lines


def regime_lines(results: dict[str, Any]) -> list[str]:
    """The regime section: n-gram lines, the model against them, what the metadata can buy, MCQ against its baselines."""
    reg = results.get("regime") or {}
    ng = reg.get("ngram_bits_per_byte") or {}
    if not ng:
        return ["No n-gram baselines were computed: every perplexity claim is ungated."]
    lines = [f"Bits/byte on the same test articles and bytes ({(results.get('ngram') or {}).get('test_articles', '?')} articles, first "
             f"{results.get('eval_body_bytes', '?')} bytes of each), continents weighted equally:", "",
             "| model | bits/byte |", "|---|---|"]
    lines += [f"| {k} (smoothed counts, build tokenizer) | {v:.4f} |" for k, v in ng.items()]
    size = results["plan"]["preset_config"]["sizes"][-1]
    for arm, cond in ((f"{size}-global-nometa", "none"), (f"{size}-global-meta", "none"), (f"{size}-global-meta", results.get("meta_template", "full"))):
        b = _arm_bpb(results, arm, cond)
        if b:
            lines.append(f"| {arm}, metadata {cond} (mean over {len(_runs_of(results, arm))} seeds; seed SD {b[1]:.4f}) | {b[0]:.4f} |")
    verdict = "**in regime**" if reg.get("language_model") else "**out of regime** (every perplexity claim reads inconclusive)"
    lines += ["", f"Is it a language model? {reg.get('why')}: {verdict}."]
    if reg.get("curve_end"):
        ends = "; ".join(f"{e['train_bits_per_byte']:.3f} after {e['input_tokens']:,} input tokens" for e in reg["curve_end"])
        cross = ", ".join("not reached" if t is None else f"{t:,} tokens" for t in reg.get("tokens_to_regime", []))
        lines.append(f"- Tokens to regime (the no-metadata arm's training loss, in test bits/byte, below the {NGRAM_GATE} line; per seed): {cross}. "
                     f"Its learning curves end at {ends} (`learning_curves.png`).")
    for f in ("country", "continent"):
        g = ngram_gain(results, f)
        if g:
            lines.append(f"- What the {f} can buy a counting model: the {NGRAM_GATE} gains {g.estimate:+.4f} bits/byte "
                         f"(95% CI {g.ci_low:+.4f} to {g.ci_high:+.4f}) from the statistics of the article's own {f}.")
    if reg.get("mcq_base_accuracy") is not None:
        lines.append(f"- Does it know anything (MCQ)? Base models {reg['mcq_base_accuracy']:.3f} against the strongest answer-only baseline or chance "
                     f"{reg['mcq_strongest_baseline']:.3f} (gate: +{MCQ_GATE_MARGIN}): **{'passes' if reg['mcq_knows'] else 'at chance'}**.")
    return lines


def readme_summary(results: dict[str, Any]) -> str:
    """The README's paragraph on the reference run, generated from results.json alone (a test keeps them equal)."""
    st = results.get("stage_seconds", {})
    trained = [n for n, r in results["runs"].items() if r["training"]["status"] == "trained"]
    skipped = [n for n, r in results["runs"].items() if r["training"]["status"] != "trained"]
    reg = results.get("regime") or {}
    lines = [f"**Reference `{results['preset']}` run** ({len(trained)} of {len(results['runs'])} runs trained, {results['plan'].get('seeds', 1)} seeds per arm"
             + (f"; {len(skipped)} skipped: the corpus lacks their continent" if skipped else "")
             + f"; stage seconds: {', '.join(f'{k} {v:.0f}' for k, v in st.items())}; full report in `docs/results/localization-study-{results['preset']}/`). "
             + (f"Regime: {reg.get('why')} — {'in regime' if reg.get('language_model') else 'out of regime'}. " if reg.get("why") else "")
             + "Paired, seeded verdicts:", ""]
    for c in results["claims"]:
        d = c.get("difference") or {}
        est = d.get("estimate")
        num = (f"{est:+.4f} {c['units']} (95% CI {d['ci_low']:+.4f} to {d['ci_high']:+.4f}, {d['items']} paired items; {seed_note(d)}; "
               f"SESOI/margin {c['threshold']:.4f})" if est is not None and est == est and d.get("ci_low") == d.get("ci_low") else "no interval")
        lines.append(f"- **{c['verdict']}**: {c['finding']} — {num}; {c['reason']}.")
    lines += mcq_lines(results.get("mcq", {}))
    return "\n".join(lines) + "\n"


def _layout(results: dict[str, Any]) -> str:
    w = results.get("workers")
    return "" if w is None else (f"; {w} runs side by side, one thread each" if w > 1 else "; one run at a time, every thread")


def write_report(results: dict[str, Any], out: Path) -> None:
    results["regime"] = regime(results)
    verdicts = claims(results)
    results["_verdicts"] = verdicts
    results["claims"] = [v.to_dict() for v in verdicts]
    results["figures"] = figures(results, out)
    (out / "results.json").write_text(json.dumps(_strip_items(results), indent=1, default=str))
    (out / "readme_summary.md").write_text(readme_summary(json.loads((out / "results.json").read_text())))
    lines = [f"# Localization study ({results['preset']} preset)", "", f"Corpus `{results['input']}`; "
             f"{len(results['runs'])} runs ({results['plan']['paper_runs']} from the paper's grid; {results['plan'].get('seeds', 1)} seeds per arm); "
             f"stage seconds {results['stage_seconds']}{_layout(results)}.", "", "## Regime", ""] + regime_lines(results) + [
             "", "## Claims", "", "| verdict | claim | test | difference (95% CI) | seeds, seed SD, item SE | MDE | SESOI / margin | cells | why |",
             "|---|---|---|---|---|---|---|---|---|"]
    for v in verdicts:
        d = v.difference
        ok = d is not None and np.isfinite(d["estimate"]) and np.isfinite(d["ci_low"])
        diff = f"{d['estimate']:+.4f} ({d['ci_low']:+.4f}, {d['ci_high']:+.4f}), n={d['items']}" if ok else "—"
        lines.append(f"| **{v.verdict}** | {v.finding} | {v.test} | {diff} {v.units} | {seed_note(d)} | {d['mde']:.4f} | {v.threshold:.4f} | "
                     f"{', '.join(v.cells) or 'all'} | {v.reason} |"
                     if ok else f"| **{v.verdict}** | {v.finding} | {v.test} | — | — | — | {v.threshold:.4f} | — | {v.reason} |")
    lines += ["", "Every difference pairs two models on the same test articles (or questions): per-article bits summed per continent over "
              "its bytes, continents weighted equally. The interval adds the article spread (bootstrap) and the seed spread (each arm's "
              "statistic across its training runs; t interval, `studies/stats.py`); an arm with one run gives no definite word. "
              "Superiority: reproduced when the interval excludes 0 in the paper's direction and is not wholly inside ±SESOI; not reproduced "
              "when it is wholly inside ±SESOI or excludes the SESOI; non-inferiority: reproduced when the whole interval lies within the "
              "margin. Thresholds and gates are fixed in `studies/localization/report.py`, set in commit "
              f"{THRESHOLDS_COMMIT} before this run.", "", "Sources of the thresholds:", ""]
    lines += [f"- {v.finding}: {v.threshold:.4f} {v.units} — {v.source}" + (f"; the bigram gains {v.details['ngram_gain']:+.4f} bits/byte from the same "
              "metadata" if "ngram_gain" in v.details else "") for v in verdicts]
    lines += ["", "## Runs", "", "Tokens: non-padding input tokens seen (planned block tokens, steps x batch x block: a packed block closes "
              "when the next article does not fit, so part of each block is padding). A cooldown run's wall time is its last 10% alone: it "
              "continues its seed's metadata run from the checkpoint at 90% of the steps.", "",
              "| run | family | dataset | seed | status | last logged train loss | tokens (planned) | wall s |",
              "|---|---|---|---|---|---|---|---|"]
    for n, r in results["runs"].items():
        t = r["training"]
        last = t.get("last_logged_train_loss")
        lines.append(f"| {n} | {r['run']['family']} | {r['run']['experiment']}/{r['run']['template']} | {t.get('seed', '')} | "
                     f"{t['status']}{': ' + t['reason'] if 'reason' in t else ''}{' (resumed from ' + t['resumed_from'] + ')' if t.get('resumed_from') else ''} | "
                     f"{'—' if last is None else f'{last:.4f}'} | {t.get('tokens_seen', {}).get('input_tokens', 0):,} ({t.get('planned_tokens', 0):,}) | "
                     f"{t.get('wall_time_seconds', '')} |")
    lines += ["", "## Per-continent bits per byte (metadata not scored)", "", "| run | condition | " + " | ".join(CONTINENTS) + " |",
              "|---|---|" + "---|" * len(CONTINENTS)]
    for n, r in results["runs"].items():
        for cond in ("none", r["run"]["template"] if r["run"]["template"] != "none" else results.get("meta_template", "full")):
            v = _bpb(results, n, cond)
            if v:
                lines.append(f"| {n} | {cond} | " + " | ".join(f"{v[c][0]:.3f} ± {v[c][1]:.3f}" if c in v else "—" for c in CONTINENTS) + " |")
    mcq = mcq_lines(results.get("mcq", {}))
    if mcq:
        lines += ["", "## Localized MCQ"] + mcq
    lines += ["", "Figures: " + ", ".join(f"![{f}]({f})" for f in results["figures"]), ""]
    (out / "report.md").write_text("\n".join(lines))
