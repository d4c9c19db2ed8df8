"""The localization study's report: regime section, tables, figures and the verdicts of ``claims.py``.

Perplexity tables are bits per byte of the article body (the metadata is context, never scored); the claims, their
thresholds and gates are declared in ``claims.py``; the verdict table, forest figure, README table and methods text come
from the shared kit (``metacond.studies.report_kit``).
"""

from __future__ import annotations

import math
from pathlib import Path

from metacond.eval_tasks.results import summary_value
from metacond.eval_tasks.stats import Verdict
from metacond.studies.report_kit import methods, readme_table, sources, verdict_figure, verdict_table

from .claims import MCQ_GATE_MARGIN, NGRAM_GATE, THRESHOLDS_COMMIT, claims, regime
from .grid import CONTINENTS
from .results import LocalizationStudyResults


def _bpb(results: LocalizationStudyResults, run: str, cond: str) -> dict[str, tuple[float, float]]:
    """continent -> (bits per byte, CI half-width) of a run under a condition (for tables)."""
    rec = results.record(run)
    if rec is None or not rec.evaluated:
        return {}
    return {r.key: (r.value, r.half_width) for r in rec.regional
            if (r.family, r.condition, r.metric, r.level) == ("ppl", cond, "bits_per_byte", "continent")}


def figures(results: LocalizationStudyResults, verdicts: list[Verdict], out: Path) -> list[str]:
    from metacond.figures import finish, pyplot, save

    plt = pyplot()
    import numpy as np

    made = []
    names = [r.name for r in results.records() if r.evaluated]
    if names:
        mat = np.full((len(names), len(CONTINENTS)), np.nan)
        for i, n in enumerate(names):
            t = results.runs[n]["run"]["template"]  # the run's own metadata (grid.Run.template)
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
    if verdict_figure(verdicts, out / "paired_differences.png", "Paired differences (same articles / questions), 95% intervals over items and seeds"):
        made.append("paired_differences.png")
    # Learning curves in the units of the regime lines: training loss (nats/token) over the test articles' bytes per token.
    ng = results.ngram
    tpb = sum(i["tokens"] for i in ng.get("items", [])) / max(1.0, sum(i["bytes"] for i in ng.get("items", []))) if ng.get("items") else None
    fig, ax = plt.subplots(figsize=(7.5, 4.0), dpi=110)
    for k, (n, r) in enumerate(results.runs.items()):
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
        reg = results.regime
        if reg is not None and reg.model_bits_per_byte:
            ax.axhline(reg.model_bits_per_byte, ls=":", lw=1.2, color="C3", label=f"no-metadata model on the test articles ({reg.model_bits_per_byte:.3f})")
    ax.legend(fontsize=5, ncol=2)
    finish(fig, ax, out / "learning_curves.png", xlabel="input tokens",
           ylabel="training loss, bits/byte (via test bytes per token)" if tpb else "training loss (nats/token)",
           title="Learning curves against the n-gram lines")
    made.append("learning_curves.png")
    return made


def mcq_lines(results: LocalizationStudyResults) -> list[str]:
    """MCQ accuracy before/after instruction tuning beside its trivial baselines (chance, answer-only heuristics)."""
    lines: list[str] = []
    mcq = results.mcq
    if mcq.get("questions"):
        base = mcq.get("answer_only_baselines") or {}
        lines += ["", f"MCQ: {mcq['questions']} questions from the test split, each asked under 4 option orders. Trivial baselines: chance "
                  f"{mcq.get('chance', 0.25):.2f}" + "".join(f", {k.replace('_', ' ')} option {v:.3f}" for k, v in base.items()) + "."]
        for m in results.mcq_models():
            lines.append(f"- {m.name} (metadata {m.condition}): accuracy {summary_value(m.summary(), 'mcq', m.condition):.3f} before, "
                         f"{summary_value(m.summary(after=True), 'mcq', m.condition):.3f} after instruction tuning.")
    return lines


def regime_lines(results: LocalizationStudyResults) -> list[str]:
    """The regime section: n-gram lines, the model against them, what the metadata can buy, MCQ against its baselines."""
    reg = results.regime
    ng = reg.ngram_bits_per_byte if reg is not None else {}
    if reg is None or not ng:
        return ["No n-gram baselines were computed: every perplexity claim is ungated."]
    lines = [f"Bits/byte on the same test articles and bytes ({results.ngram.get('test_articles', '?')} articles, first "
             f"{results.eval_body_bytes or '?'} bytes of each), continents weighted equally:", "",
             "| model | bits/byte |", "|---|---|"]
    lines += [f"| {k} (smoothed counts, build tokenizer) | {v:.4f} |" for k, v in ng.items()]
    for a in reg.arms or []:
        lines.append(f"| {a['arm']}, metadata {a['condition']} (mean over {a['seeds']} seeds; seed SD {a['seed_sd']:.4f}) | {a['bits_per_byte']:.4f} |")
    verdict = "**in regime**" if reg.language_model else "**out of regime** (every perplexity claim reads inconclusive)"
    lines += ["", f"Is it a language model? {reg.why}: {verdict}."]
    if reg.curve_end:
        ends = "; ".join(f"{e['train_bits_per_byte']:.3f} after {e['input_tokens']:,} input tokens" for e in reg.curve_end)
        cross = ", ".join("not reached" if t is None else f"{t:,} tokens" for t in reg.tokens_to_regime or [])
        lines.append(f"- Tokens to regime (the no-metadata arm's training loss, in test bits/byte, below the {NGRAM_GATE} line; per seed): {cross}. "
                     f"Its learning curves end at {ends} (`learning_curves.png`).")
    for f, g in (reg.ngram_gains or {}).items():
        lines.append(f"- What the {f} can buy a counting model: the {NGRAM_GATE} gains {g.estimate:+.4f} bits/byte ({g.ci()}) from the statistics "
                     f"of the article's own {f}.")
    if reg.mcq_base_accuracy is not None:
        lines.append(f"- Does it know anything (MCQ)? Base models {reg.mcq_base_accuracy:.3f} against the strongest answer-only baseline or chance "
                     f"{reg.mcq_strongest_baseline:.3f} (gate: +{MCQ_GATE_MARGIN}): **{'passes' if reg.mcq_knows else 'at chance'}**.")
    return lines


def readme_summary(results: LocalizationStudyResults) -> str:
    """The README's paragraph on the reference run, generated from results.json alone (a test keeps them equal)."""
    trained = [r.name for r in results.records() if r.trained]
    skipped = [r.name for r in results.records() if not r.trained]
    reg = results.regime
    lines = [f"**Reference `{results.preset}` run** ({len(trained)} of {len(results.runs)} runs trained, {results.plan.get('seeds', 1)} seeds per arm"
             + (f"; {len(skipped)} skipped: the corpus lacks their continent" if skipped else "")
             + f"; stage seconds: {', '.join(f'{k} {v:.0f}' for k, v in results.stage_seconds.items())}; full report in "
             f"`docs/results/localization-study-{results.preset}/`). "
             + (f"Regime: {reg.why} — {'in regime' if reg.language_model else 'out of regime'}. " if reg is not None and reg.why else "")
             + "Paired, seeded verdicts:", ""]
    lines += readme_table(results.claims)
    lines += mcq_lines(results)
    return "\n".join(lines) + "\n"


def _layout(results: LocalizationStudyResults) -> str:
    w = results.workers
    return "" if w is None else (f"; {w} runs side by side, one thread each" if w > 1 else "; one run at a time, every thread")


def write_report(results: LocalizationStudyResults, out: Path) -> None:
    results.regime = regime(results)
    verdicts = claims(results)
    results.claims = verdicts
    results.figures = figures(results, verdicts, out)
    results.save(out)
    (out / "readme_summary.md").write_text(readme_summary(LocalizationStudyResults.load(out)))
    lines = [f"# Localization study ({results.preset} preset)", "", f"Corpus `{results.input}`; "
             f"{len(results.runs)} runs ({results.plan['paper_runs']} from the paper's grid; {results.plan.get('seeds', 1)} seeds per arm); "
             f"stage seconds {results.stage_seconds}{_layout(results)}.", "", "## Regime", ""] + regime_lines(results) + [
             "", "## Claims", ""]
    lines += verdict_table(verdicts)
    lines += ["", methods("the same test articles (or questions): per-article bits summed per continent over its bytes, continents weighted "
                          "equally", "studies/localization/claims.py", THRESHOLDS_COMMIT), "", "Sources of the thresholds:", ""]
    lines += sources(verdicts, lambda v: f"; the bigram gains {v.details['ngram_gain']:+.4f} bits/byte from the same metadata" if "ngram_gain" in v.details
                     else "")
    lines += ["", "## Runs", "", "Tokens: non-padding input tokens seen (planned block tokens, steps x batch x block: a packed block closes "
              "when the next article does not fit, so part of each block is padding). A cooldown run's wall time is its last 10% alone: it "
              "continues its seed's metadata run from the checkpoint at 90% of the steps.", "",
              "| run | family | dataset | seed | status | last logged train loss | tokens (planned) | wall s |",
              "|---|---|---|---|---|---|---|---|"]
    for rec in results.records():
        t = rec.training
        last = t.get("last_logged_train_loss")
        lines.append(f"| {rec.name} | {rec.family} | {rec.experiment}/{rec.template} | {t.get('seed', '')} | "
                     f"{t['status']}{': ' + t['reason'] if 'reason' in t else ''}{' (resumed from ' + t['resumed_from'] + ')' if t.get('resumed_from') else ''} | "
                     f"{'—' if last is None else f'{last:.4f}'} | {t.get('tokens_seen', {}).get('input_tokens', 0):,} ({t.get('planned_tokens', 0):,}) | "
                     f"{t.get('wall_time_seconds', '')} |")
    lines += ["", "## Per-continent bits per byte (metadata not scored)", "", "| run | condition | " + " | ".join(CONTINENTS) + " |",
              "|---|---|" + "---|" * len(CONTINENTS)]
    for rec in results.records():
        for cond in ("none", rec.template if rec.template != "none" else results.meta_template):
            v = _bpb(results, rec.name, cond)
            if v:
                lines.append(f"| {rec.name} | {cond} | " + " | ".join(f"{v[c][0]:.3f} ± {v[c][1]:.3f}" if c in v else "—" for c in CONTINENTS) + " |")
    mcq = mcq_lines(results)
    if mcq:
        lines += ["", "## Localized MCQ"] + mcq
    lines += ["", "Figures: " + ", ".join(f"![{f}]({f})" for f in results.figures), ""]
    (out / "report.md").write_text("\n".join(lines))
