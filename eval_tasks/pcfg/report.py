"""The PCFG study's report: results.json, report.md with a verdict per finding, and PNG figures.

Verdict rules are fixed here, before any numbers are seen, and applied the same way at every scale:
a difference counts when it exceeds twice its standard error (binomial SEs for accuracies, paired
per-sequence SEs for losses). Short prompts are L <= 5, long prompts are the full sequence.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from metacond.figures import pyplot

SHORT = {"1", "2", "5"}


def _probe_mean(model: dict, lengths_wanted: set[str]) -> tuple[float, float] | None:
    accs, ses = [], []
    for level in model["probing"]["levels"]:
        for row in level:
            if row and row["L"] in lengths_wanted:
                accs.append(row["test_accuracy"])
                ses.append(row["test_se"])
    if not accs:
        return None
    # Cells share sequences, so their errors correlate: the mean SE is the conservative choice.
    return float(np.mean(accs)), float(np.mean(ses))


def _grammar_mean(model: dict, key: str, lengths_wanted: set[int]) -> tuple[float, float] | None:
    rows = [r for r in model.get(key, {}).get("rows", []) if r and r["L"] in lengths_wanted]
    if not rows:
        return None
    return float(np.mean([r["accuracy"] for r in rows])), float(np.mean([r["se"] for r in rows]))


def _verdict(holds: bool, measurable: bool) -> str:
    if not measurable:
        return "inconclusive"
    return "reproduced" if holds else "not reproduced"


def findings(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each finding: text, verdict (reproduced / not reproduced / inconclusive) and the numbers.

    "Inconclusive" means the baseline shows no signal to lose (e.g. the D_M=0 model's accuracy is at
    chance, or no model ever generates a grammatical sequence), so the comparison says nothing.
    """
    models = {int(k): v for k, v in results["models"].items()}
    depths = sorted(models)
    out: list[dict[str, Any]] = []
    # 1. Metadata lowers loss when it is given.
    lines, ok = [], []
    for d in depths:
        if d == 0:
            continue
        g = models[d]["loss"]["metadata_gain"]
        good = g["model"] > 2 * g["model_se"]
        ok.append(good)
        lines.append(f"D_M={d}: {g['model']:+.4f} ± {g['model_se']:.4f} nats/token (Bayes {g['bayes']:+.4f}){'' if good else ' [not significant]'}")
    if ok:
        verdict = "reproduced" if all(ok) else ("partly reproduced" if any(ok) else "not reproduced")
        out.append({"finding": "Metadata lowers the loss when it is given", "verdict": verdict,
                    "evidence": "; ".join(lines) + " — loss with masks minus loss with the true metadata prefix."})
    if 0 not in models or len(depths) < 2:
        return out
    deep = max(depths)
    # 2. Short prompts: deeper metadata -> worse latent inference.
    chance = float(np.mean(results["bayes"]["chance"]))
    base, dm = _probe_mean(models[0], SHORT), _probe_mean(models[deep], SHORT)
    if base and dm:
        diff, se = base[0] - dm[0], float(np.hypot(base[1], dm[1]))
        out.append({"finding": f"With short prompts (L <= 5) the D_M={deep} model infers the latent worse than D_M=0 (probing)",
                    "verdict": _verdict(diff > 2 * se, base[0] > chance + 2 * base[1]),
                    "evidence": f"mean probing accuracy over levels and L<=5: D_M=0 {base[0]:.3f}, D_M={deep} {dm[0]:.3f} (difference {diff:+.3f} ± {se:.3f}); "
                                + ", ".join(f"D_M={d} {_probe_mean(models[d], SHORT)[0]:.3f}" for d in depths)})
    gl = {1, 2, 5}
    base, dm = _grammar_mean(models[0], "grammar_masked", gl), _grammar_mean(models[deep], "grammar_masked", gl)
    if base and dm:
        diff, se = base[0] - dm[0], float(np.hypot(base[1], dm[1]))
        out.append({"finding": f"With short prompts (L <= 5) the D_M={deep} model generates grammatical continuations less often than D_M=0",
                    "verdict": _verdict(diff > 2 * se, base[0] > 2 * base[1] and base[0] > 0),
                    "evidence": f"mean grammar accuracy at L<=5 (masked prefix): D_M=0 {base[0]:.3f}, D_M={deep} {dm[0]:.3f} (difference {diff:+.3f} ± {se:.3f}); "
                                + ", ".join(f"D_M={d} {_grammar_mean(models[d], 'grammar_masked', gl)[0]:.3f}" for d in depths)})
    # 3. Long prompts: as well or better.
    full = {"full"}
    base = _probe_mean(models[0], full)
    if base:
        rows, ok = [], []
        for d in depths:
            if d == 0:
                continue
            m = _probe_mean(models[d], full)
            se = float(np.hypot(base[1], m[1]))
            ok.append(m[0] >= base[0] - 2 * se)
            rows.append(f"D_M={d} {m[0]:.3f} (vs D_M=0 {base[0]:.3f}, ±{se:.3f})")
        out.append({"finding": "With the full sequence, models trained with metadata infer the latent as well or better (probing)",
                    "verdict": _verdict(all(ok), base[0] > chance + 2 * base[1]), "evidence": "mean probing accuracy over levels at full length: " + "; ".join(rows)})
    longest = max((r["L"] for r in models[0]["grammar_masked"]["rows"] if r), default=None)
    if longest is not None:
        base = _grammar_mean(models[0], "grammar_masked", {longest})
        rows, ok = [], []
        for d in depths:
            if d == 0:
                continue
            m = _grammar_mean(models[d], "grammar_masked", {longest})
            se = float(np.hypot(base[1], m[1]))
            ok.append(m[0] >= base[0] - 2 * se)
            rows.append(f"D_M={d} {m[0]:.3f} (vs {base[0]:.3f}, ±{se:.3f})")
        out.append({"finding": f"With long prompts (L={longest}) models trained with metadata generate grammatical text as well or better",
                    "verdict": _verdict(all(ok), base[0] > 2 * base[1] and base[0] > 0), "evidence": "; ".join(rows)})
    return out


def _fig_probing(results, path: Path) -> None:
    plt = pyplot()
    models = {int(k): v for k, v in results["models"].items()}
    bayes = results["bayes"]
    lengths = bayes["lengths"]
    D = len(bayes["probing"])
    fig, axes = plt.subplots(1, D, figsize=(3.2 * D, 3.2), dpi=110, sharey=True)
    axes = np.atleast_1d(axes)
    x = np.arange(len(lengths))
    for d, ax in enumerate(axes):
        for dm, m in sorted(models.items()):
            ys = [r["test_accuracy"] if r else np.nan for r in m["probing"]["levels"][d]]
            ax.plot(x, ys, "o-", ms=3, label=f"D_M={dm}")
        ax.plot(x, [v if v is not None else np.nan for v in bayes["probing"][d]], "k--", lw=1.5, label="Bayes (exact posterior)")
        ax.axhline(bayes["chance"][d], color="gray", ls=":", lw=1, label="chance")
        ax.set_xticks(x, lengths)
        ax.set_title(f"level d={d}")
        ax.set_xlabel("prompt length L")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("probe test accuracy for j_d")
    axes[-1].legend(fontsize=7, loc="lower right")
    fig.suptitle("Linear probing of the metadata from a masked prefix")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _fig_grammar(results, path: Path) -> None:
    plt = pyplot()
    models = {int(k): v for k, v in results["models"].items()}
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    for i, (dm, m) in enumerate(sorted(models.items())):
        c = f"C{i}"
        rows = [r for r in m["grammar_masked"]["rows"] if r]
        ax.errorbar([str(r["L"]) for r in rows], [r["accuracy"] for r in rows], yerr=[r["se"] for r in rows], fmt="o-", color=c, ms=3, capsize=2,
                    label=f"D_M={dm}, masked prefix")
        if "grammar_metadata" in m:
            rows = [r for r in m["grammar_metadata"]["rows"] if r]
            ax.plot([str(r["L"]) for r in rows], [r["accuracy"] for r in rows], "s--", color=c, ms=3, alpha=0.7, label=f"D_M={dm}, true metadata")
    ax.set_xlabel("prompt length L (terminals)")
    ax.set_ylabel("fraction accepted by CYK")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Grammar accuracy of sampled continuations (temperature 1)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _fig_loss(results, path: Path) -> None:
    plt = pyplot()
    models = {int(k): v for k, v in results["models"].items()}
    dms = sorted(models)
    x = np.arange(len(dms))
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    masked = [models[d]["loss"]["masked"]["model_loss"] for d in dms]
    meta = [models[d]["loss"].get("metadata", models[d]["loss"]["masked"])["model_loss"] for d in dms]
    ax.bar(x - 0.2, masked, 0.4, label="model, masked prefix")
    ax.bar(x + 0.2, meta, 0.4, label="model, true metadata")
    ax.plot(x - 0.2, [models[d]["loss"]["masked"]["bayes_loss"] for d in dms], "k_", ms=22, mew=2, label="Bayes-optimal")
    ax.plot(x + 0.2, [models[d]["loss"].get("metadata", models[d]["loss"]["masked"])["bayes_loss"] for d in dms], "k_", ms=22, mew=2)
    ax.axhline(results["bayes"]["unigram_loss"], color="gray", ls=":", label="unigram baseline")
    ax.set_xticks(x, [f"D_M={d}" for d in dms])
    ax.set_ylabel("nats per scored token")
    lo = min(min(masked), min(meta), min(models[d]["loss"]["masked"]["bayes_loss"] for d in dms))
    ax.set_ylim(max(0, lo - 0.15), results["bayes"]["unigram_loss"] * 1.05)
    ax.set_title("Next-token loss with and without metadata vs the Bayes bound")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(out: Path, results: dict[str, Any]) -> None:
    results["findings"] = findings(results)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    _fig_probing(results, out / "probing.png")
    _fig_grammar(results, out / "grammar_accuracy.png")
    _fig_loss(results, out / "loss.png")
    (out / "report.md").write_text(render_markdown(results))


def render_markdown(r: dict[str, Any]) -> str:
    models = {int(k): v for k, v in r["models"].items()}
    dms = sorted(models)
    b = r["bayes"]
    L = b["lengths"]
    lines = [f"# PCFG metadata-conditioning study — preset `{r['preset']}`", "",
             f"Grammar: {r['grammar']}. Model size `{r['preset_config']['model_size']}`, {r['preset_config']['max_steps']} steps × "
             f"{r['preset_config']['batch_size']} sequences per D_M; half of the training sequences show their metadata.", "",
             "## Findings", ""]
    for f in r["findings"]:
        lines.append(f"- **{f['verdict'].capitalize()}** — {f['finding']}. {f['evidence']}")
    lines += ["", "A difference counts when it exceeds twice its standard error; a finding is inconclusive when its baseline shows no "
              "signal to lose (accuracy at chance, or no grammatical generations). The rules are fixed in `eval_tasks/pcfg/report.py`.", "",
              "## Training", "", "| D_M | parameters | input tokens | wall time (s) | final train loss | hardware |", "|---|---|---|---|---|---|"]
    for d in dms:
        t = r["training"][str(d)]
        lines.append(f"| {d} | {t['parameters']:,} | {t['tokens']['input_tokens']:,} | {t['wall_time_seconds']} | {t['final_train_loss']:.4f} | {t['hardware']} |")
    lines += ["", "## Next-token loss (nats per terminal/`<eos>`, held-out)", "",
              f"Unigram baseline: {b['unigram_loss']:.4f}.", "",
              "| D_M | masked: model | masked: Bayes | masked: excess | metadata: model | metadata: Bayes | metadata: excess | gain from metadata (model / Bayes) |",
              "|---|---|---|---|---|---|---|---|"]
    for d in dms:
        lo = models[d]["loss"]
        m = lo["masked"]
        row = f"| {d} | {m['model_loss']:.4f} | {m['bayes_loss']:.4f} | {m['excess_loss']:.4f} ± {m['excess_loss_se']:.4f} |"
        if "metadata" in lo:
            t, g = lo["metadata"], lo["metadata_gain"]
            row += f" {t['model_loss']:.4f} | {t['bayes_loss']:.4f} | {t['excess_loss']:.4f} ± {t['excess_loss_se']:.4f} | {g['model']:+.4f} ± {g['model_se']:.4f} / {g['bayes']:+.4f} |"
        else:
            row += " — | — | — | — |"
        lines.append(row)
    lines += ["", "![loss](loss.png)", "", "## Probing the metadata (test accuracy, layer chosen on validation)", ""]
    for d in range(len(b["probing"])):
        lines += [f"Level d={d} (chance {b['chance'][d]:.2f})", "", "| model | " + " | ".join(f"L={x}" for x in L) + " |", "|---|" + "---|" * len(L)]
        for dm in dms:
            lines.append(f"| D_M={dm} | " + " | ".join(f"{row['test_accuracy']:.3f}" if row else "—" for row in models[dm]["probing"]["levels"][d]) + " |")
        lines.append("| Bayes | " + " | ".join(f"{v:.3f}" if v is not None else "—" for v in b["probing"][d]) + " |")
        lines.append("")
    lines += ["![probing](probing.png)", "", "## Grammar accuracy (CYK acceptance of prompt + sampled continuation)", ""]
    gl = [row["L"] for row in models[dms[0]]["grammar_masked"]["rows"] if row]
    lines += ["| model | prefix | " + " | ".join(f"L={x}" for x in gl) + " |", "|---|---|" + "---|" * len(gl)]
    for dm in dms:
        for key, name in (("grammar_masked", "masked"), ("grammar_metadata", "true metadata")):
            if key in models[dm]:
                cells = {row["L"]: row for row in models[dm][key]["rows"] if row}
                lines.append(f"| D_M={dm} | {name} | " + " | ".join(f"{cells[x]['accuracy']:.2f}" if x in cells else "—" for x in gl) + " |")
    lines += ["", "![grammar accuracy](grammar_accuracy.png)", ""]
    return "\n".join(lines)
