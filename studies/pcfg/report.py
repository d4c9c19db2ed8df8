"""The PCFG study's report: results.json, report.md, verdicts.txt and figures from the verdicts of ``findings.py``.

Every comparison pairs two arms on the same items (held-out sequences, probe test sequences, prompts) through
``metacond.eval_tasks.stats``; the findings, their thresholds and cell rules are declared in ``findings.py``; the verdict
table, forest figure, README table and methods text come from the shared kit (``metacond.studies.report_kit``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from metacond.eval_tasks.pcfg.loss import EARLY_POSITIONS
from metacond.eval_tasks.pcfg.results import PcfgRegime, PcfgStudyResults
from metacond.eval_tasks.stats import Verdict, paired_difference
from metacond.figures import finish, pyplot, save
from metacond.studies.report_kit import methods, readme_table, sources, verdict_figure, verdict_text
from metacond.studies.report_kit import verdict_table as verdict_table_md

from .findings import GRAMMAR_SIGNAL, REGIME_EXCESS_LOSS, REGIME_PROBE_SHARE, THRESHOLDS_COMMIT, findings, probe_cells, regime


# ---------------------------------------------------------------------- figures
def _fig_probing(results: PcfgStudyResults, path: Path) -> None:
    plt = pyplot()
    models = {d: results.runs(d)[0] for d in results.depths}  # the first run of each D_M (verdicts pool every run)
    lengths = results.bayes["lengths"]
    bayes = np.asarray(results.bayes["probe_correct"], float)
    D = bayes.shape[0]
    cells0 = {(c.level, c.li): c for c in probe_cells(results, min(models))}
    fig, axes = plt.subplots(1, D, figsize=(3.0 * D, 3.3), dpi=110, sharey=True)
    axes = np.atleast_1d(axes)
    x = np.arange(len(lengths))
    for d, ax in enumerate(axes):
        for i, (dm, m) in enumerate(sorted(models.items())):
            probes = m.probe_levels[d]
            ys = np.array([p.test_accuracy if p else np.nan for p in probes])
            es = np.array([1.96 * p.test_se if p else np.nan for p in probes])
            ax.errorbar(x + 0.06 * i, ys, yerr=es, fmt="o-", ms=3, capsize=2, label=f"D_M={dm}, seed {m.training_seed or 0}")
        bay = [np.nan if (d, li) not in cells0 else cells0[(d, li)].bayes for li in range(len(lengths))]
        ax.plot(x, bay, "k--", lw=1.5, label="Bayes (same test items)")
        ax.axhline(results.bayes["chance"][d], color="gray", ls=":", lw=1, label="chance")
        for li in range(len(lengths)):
            if (d, li) in cells0 and cells0[(d, li)].informative:
                ax.axvspan(li - 0.4, li + 0.4, color="C2", alpha=0.08, lw=0)
        ax.set_xticks(x, lengths)
        ax.set_title(f"level d={d}")
        ax.set_xlabel("prompt length L")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("probe accuracy on unseen prompts")
    axes[-1].legend(fontsize=6, loc="lower right")
    save(fig, path, suptitle="Linear probing of j_d from a masked prefix (green: informative cells that enter verdicts)")


def _fig_grammar(results: PcfgStudyResults, path: Path) -> None:
    plt = pyplot()
    models = {d: results.runs(d)[0] for d in results.depths}  # the first run of each D_M
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    ys = []
    for i, (dm, m) in enumerate(sorted(models.items())):
        rows = list((m.grammar() or {}).values())
        ax.errorbar([str(r.L) for r in rows], [r.accuracy for r in rows], yerr=[1.96 * r.se for r in rows], fmt="o-", color=f"C{i}", ms=3,
                    capsize=2, label=f"D_M={dm}, masked prefix")
        ys += [r.accuracy for r in rows]
        given = m.grammar(with_metadata=True)
        if given is not None:
            rows = list(given.values())
            ax.plot([str(r.L) for r in rows], [r.accuracy for r in rows], "s--", color=f"C{i}", ms=3, alpha=0.7, label=f"D_M={dm}, true metadata")
            ys += [r.accuracy for r in rows]
    base = results.bayes.get("grammar_unigram") or {}
    if base:
        ax.plot(list(base), list(base.values()), "x:", color="k", ms=4, label="unigram continuations (trivial baseline)")
        ys += list(base.values())
    ax.axhline(GRAMMAR_SIGNAL, color="gray", ls=":", lw=1, label=f"signal threshold ({GRAMMAR_SIGNAL})")
    if ys:
        ax.set_ylim(max(0.0, min(ys) - 0.08), min(1.0, max(ys) + 0.08))
    finish(fig, ax, path, xlabel="prompt length L (terminals)", ylabel="fraction accepted by CYK (95% CI)",
           title="Grammar accuracy of sampled continuations")


def _fig_loss_by_position(results: PcfgStudyResults, path: Path) -> None:
    plt = pyplot()
    models = {d: results.runs(d)[0] for d in results.depths}  # the first run of each D_M
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), dpi=110)
    for i, (dm, m) in enumerate(sorted(models.items())):
        ex = m.masked.excess_by_position
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
        a = np.mean([r.loss_arrays["model_masked_by_position"] for r in results.runs(deep)], axis=0)
        b = np.mean([r.loss_arrays["model_masked_by_position"] for r in results.runs(0)], axis=0)
        diff = (a - b).T  # [positions, sequences]: one cell per position, items paired by sequence
        est, lo, hi = [], [], []
        for t in range(diff.shape[0]):
            pd = paired_difference(diff[t], n_boot=500)
            est.append(pd.estimate)
            lo.append(pd.ci_low)
            hi.append(pd.ci_high)
        positions = np.arange(1, diff.shape[0] + 1)
        axes[1].plot(positions, est, color="C3")
        axes[1].fill_between(positions, lo, hi, color="C3", alpha=0.25, lw=0, label="95% paired bootstrap over sequences (seed means)")
        axes[1].axhline(0, color="k", lw=1)
        axes[1].axvline(EARLY_POSITIONS + 0.5, color="gray", ls=":", lw=1)
        axes[1].set_title(f"D_M={deep} minus D_M=0 (means over seeds), same sequences, no metadata")
        axes[1].set_xlabel("position t")
        axes[1].set_ylabel("loss difference (nats)")
        axes[1].grid(alpha=0.3)
        axes[1].legend(fontsize=7)
    save(fig, path)


def _fig_loss(results: PcfgStudyResults, path: Path) -> None:
    plt = pyplot()
    dms = results.depths
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    for off, given, label, color in ((-0.15, False, "masked prefix", "C0"), (0.15, True, "true metadata", "C1")):
        first = True
        for i, d in enumerate(dms):
            runs = [s for r in results.runs(d) if (s := (r.metadata if given else r.masked)) is not None]
            if not runs:
                continue
            xs = i + off + 0.06 * (np.arange(len(runs)) - (len(runs) - 1) / 2)
            ax.errorbar(xs, [r.excess_loss for r in runs], yerr=[1.96 * r.excess_loss_se for r in runs], fmt="o", color=color, capsize=3,
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
def write_report(out: Path, results: PcfgStudyResults) -> None:
    verdicts = findings(results)
    results.findings = verdicts
    results.regime = regime(results)
    results.probe_cells = probe_cells(results, min(results.depths))
    verdict_figure(verdicts, out / "verdicts.png", "Paired differences with 95% intervals over items and training seeds")
    _fig_probing(results, out / "probing.png")
    _fig_grammar(results, out / "grammar_accuracy.png")
    _fig_loss(results, out / "loss.png")
    _fig_loss_by_position(results, out / "loss_by_position.png")
    results.save(out)
    (out / "report.md").write_text(render_markdown(results, verdicts))
    (out / "verdicts.txt").write_text(verdict_table(verdicts, results.regime))
    (out / "readme_summary.md").write_text(readme_summary(PcfgStudyResults.load(out)))


def readme_summary(r: PcfgStudyResults) -> str:
    """The README's paragraph on the reference run, generated from results.json alone (a test keeps them equal)."""
    reg = r.regime
    lines = [f"**Reference `{r.preset}` run** (full report in `docs/results/pcfg-study-{r.preset}/`; this text is generated from its "
             "`results.json`)."]
    if reg:
        lines[0] += (f" The D_M = 0 model's held-out masked loss is {reg.excess_loss:.4f} nats/token above Bayes "
                     f"({'meets' if reg.loss_ok else 'misses'} the bound {REGIME_EXCESS_LOSS}) and its probes reach "
                     f"{_pct(reg.probe_share_of_bayes_margin)} of the Bayes margin over chance on {reg.cells} informative cells "
                     f"({'meets' if reg.probe_ok else 'misses'} the bound {REGIME_PROBE_SHARE:.0%}); means over its {reg.runs} "
                     "training runs.")
    lines += ["", f"Training seeds per D_M: {', '.join(map(str, r.seeds))}. Intervals carry the item and the seed "
              "spread (t intervals; `eval_tasks/stats.py`).", ""]
    lines += readme_table(r.findings)
    return "\n".join(lines) + "\n"


def verdict_table(verdicts: list[Verdict], reg: PcfgRegime | None) -> str:
    lines = verdict_text("PCFG study verdicts (paired over items, 95% intervals over items and training seeds):", verdicts)
    if reg:
        lines.append(f"  regime of the D_M=0 model: excess loss {reg.excess_loss:.4f} nats/token ({'meets' if reg.loss_ok else 'misses'} <= "
                     f"{REGIME_EXCESS_LOSS}); probes reach {_pct(reg.probe_share_of_bayes_margin)} of the Bayes margin on {reg.cells} informative cells "
                     f"({'meets' if reg.probe_ok else 'misses'} >= {REGIME_PROBE_SHARE:.0%}); means over {reg.runs} runs "
                     f"(per run: excess {', '.join(f'{x:.4f}' for x in reg.excess_loss_per_run)}; probe share "
                     f"{', '.join(_pct(x) for x in reg.probe_share_per_run)})")
    return "\n".join(lines) + "\n"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.0%}"


def render_markdown(r: PcfgStudyResults, verdicts: list[Verdict]) -> str:
    runs = {d: r.runs(d) for d in r.depths}  # D_M -> every training run's evaluation
    seed = lambda run: r.seed if run.training_seed is None else run.training_seed  # noqa: E731  (results before seeds were recorded)
    dms = sorted(runs)
    b = r.bayes
    cfg = r.preset_config
    L = b["lengths"]
    lines = [f"# PCFG metadata-conditioning study — preset `{r.preset}`", "",
             f"Grammar: {r.grammar}. Model size `{cfg['model_size']}`, {cfg['max_steps']} steps × {cfg['batch_size']} sequences per run; "
             f"{cfg.get('seeds', 1)} training runs per D_M (seeds {', '.join(map(str, r.seeds))}: initialization and data "
             "order); half of the training sequences show their metadata.", "", "## Findings", ""]
    lines += verdict_table_md(verdicts)
    lines += ["", "![verdicts](verdicts.png)", "",
              methods("the same items (sequences, probe test sequences or prompts)", "studies/pcfg/findings.py", THRESHOLDS_COMMIT), "",
              "Sources of the smallest effects of interest and margins:", ""]
    lines += sources(verdicts)
    lines += [""]
    reg = r.regime
    if reg:
        lines += ["## Is the D_M=0 model in the paper's regime?", "",
                  f"- Held-out masked loss {reg.excess_loss:.4f} nats/token above Bayes (mean of {reg.runs} runs: "
                  f"{', '.join(f'{x:.4f}' for x in reg.excess_loss_per_run)}): **{'meets' if reg.loss_ok else 'misses'}** the bound "
                  f"{REGIME_EXCESS_LOSS}.",
                  f"- Probes reach {_pct(reg.probe_share_of_bayes_margin)} of the Bayes margin over chance on {reg.cells} informative cells "
                  f"(per run: {', '.join(_pct(x) for x in reg.probe_share_per_run)}): "
                  f"**{'meets' if reg.probe_ok else 'misses'}** the bound {REGIME_PROBE_SHARE:.0%}.", ""]
    lines += ["## Training", "", "| D_M | seed | parameters | steps | input tokens | wall time (s) | train loss, last 10% of steps | "
              "held-out loss (masked / metadata) | hardware |", "|---|---|---|---|---|---|---|---|---|"]
    for d in dms:
        for t, run in zip(r.training[str(d)], runs[d]):
            ml = run.metadata
            held = f"{run.masked.model_loss:.4f}" + (f" / {ml.model_loss:.4f}" if ml is not None else "")
            lines.append(f"| {d} | {t.get('seed', r.seed)} | {t['parameters']:,} | {t['steps']} | {t['tokens']['input_tokens']:,} | "
                         f"{t['wall_time_seconds']} | {t['final_window_train_loss']:.4f} | {held} | {t['hardware']} |")
    lines += ["", "The training loss mixes sequences with and without metadata; the held-out losses separate them.", "",
              "## Next-token loss (nats per terminal/`<eos>`, held-out)", "", f"Unigram baseline: {b['unigram_loss']:.4f}.", "",
              "| D_M | seed | masked: model | masked: Bayes | masked: excess | excess at t <= 10 | metadata: model | metadata: Bayes | metadata: excess "
              "| gain from metadata (model / Bayes) |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for d, run in ((d, run) for d in dms for run in runs[d]):
        m = run.masked
        early = m.excess_early
        row = (f"| {d} | {seed(run)} | {m.model_loss:.4f} | {m.bayes_loss:.4f} | {m.excess_loss:.4f} ± "
               f"{m.excess_loss_se:.4f} | {'—' if early is None else f'{early:.4f}'} |")
        ml, gain = run.metadata, run.metadata_gain
        if ml is not None and gain is not None:
            row += f" {ml.model_loss:.4f} | {ml.bayes_loss:.4f} | {ml.excess_loss:.4f} ± {ml.excess_loss_se:.4f} | {gain.model:+.4f} / {gain.bayes:+.4f} |"
        else:
            row += " — | — | — | — |"
        lines.append(row)
    lines += ["", "![loss](loss.png)", "", "![loss by position](loss_by_position.png)", "",
              "## Probing the metadata (test accuracy on prompts the probe never saw)", "",
              "Layer and L2 chosen by grouped cross-validation inside the probe's train split; `last` is the last layer. Bayes is scored on "
              "the same test items. Cells marked * enter verdicts (informative).", ""]
    cells = {(c.level, c.li): c for c in r.probe_cells}
    for d in range(len(b["chance"])):
        lines += [f"Level d={d} (chance {b['chance'][d]:.2f})", "", "| model | " + " | ".join(f"L={x}" for x in L) + " |", "|---|" + "---|" * len(L)]
        for dm, run in ((dm, run) for dm in dms for run in runs[dm]):
            lines.append(f"| D_M={dm}, seed {seed(run)} | "
                         + " | ".join(f"{p.test_accuracy:.3f} (last {p.last_layer_accuracy:.3f})" if p else "—" for p in run.probe_levels[d]) + " |")
        lines.append("| Bayes | " + " | ".join((f"{cells[(d, li)].bayes:.3f}{'*' if cells[(d, li)].informative else ''}" if (d, li) in cells else "—")
                                             for li in range(len(L))) + " |")
        lines.append("| left out because | " + " | ".join((cells[(d, li)].why_not or "") if (d, li) in cells else "" for li in range(len(L))) + " |")
        lines.append("")
    lines += ["![probing](probing.png)", "", "## Grammar accuracy (CYK acceptance of prompt + sampled continuation)", ""]
    gl = list(runs[dms[0]][0].grammar() or {})
    lines += ["| model | prefix | " + " | ".join(f"L={x}" for x in gl) + " |", "|---|---|" + "---|" * len(gl)]
    for dm, run in ((dm, run) for dm in dms for run in runs[dm]):
        for with_meta, name in ((False, "masked"), (True, "true metadata")):
            cs = run.grammar(with_metadata=with_meta)
            if cs is not None:
                lines.append(f"| D_M={dm}, seed {seed(run)} | {name} | "
                             + " | ".join(f"{cs[x].accuracy:.2f} (n={cs[x].n})" if x in cs else "—" for x in gl) + " |")
    base = b.get("grammar_unigram") or {}
    if base:
        lines.append("| unigram continuations (trivial baseline) | masked | " + " | ".join(f"{base[str(x)]:.2f}" if str(x) in base else "—" for x in gl) + " |")
    lines += ["", f"Grammar verdicts use only lengths where the two models' mean acceptance is at least {GRAMMAR_SIGNAL:.0%}.", "",
              "![grammar accuracy](grammar_accuracy.png)", ""]
    return "\n".join(lines)
