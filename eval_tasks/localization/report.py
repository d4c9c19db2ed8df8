"""The localization study's report: tables, figures and a verdict per claim, with the numbers behind it.

Perplexity is compared as bits per byte of the article body (the metadata is context, never scored;
bytes do not depend on the condition), per continent of the shared balanced test split, with 95%
bootstrap intervals over articles. A difference counts only when it exceeds both intervals'
half-widths combined; otherwise the verdict says "inconclusive at this scale".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .grid import CONTINENTS


def _bpb(results: dict[str, Any], run: str, cond: str) -> dict[str, tuple[float, float]]:
    """continent -> (bits per byte, CI half-width) of a run under a condition."""
    ev = results["runs"].get(run, {}).get("eval")
    if not ev:
        return {}
    out = {}
    for r in ev["regional"]:
        if r["family"] == "ppl" and r["condition"] == cond and r["metric"] == "bits_per_byte" and r["level"] == "continent":
            hw = (r["ci_high"] - r["ci_low"]) / 2 if r["ci_low"] == r["ci_low"] else 0.0
            out[r["key"]] = (r["value"], hw)
    return out


def _compare(a: dict, b: dict) -> tuple[list[str], list[str], list[str], list[str]]:
    """Continents where a < b significantly, a > b significantly, within noise; and the formatted numbers."""
    better, worse, tie, txt = [], [], [], []
    for c in CONTINENTS:
        if c in a and c in b:
            d = b[c][0] - a[c][0]
            noise = a[c][1] + b[c][1]
            (better if d > noise else worse if d < -noise else tie).append(c)
            txt.append(f"{c} {a[c][0]:.3f} vs {b[c][0]:.3f}")
    return better, worse, tie, txt


def _no_worse(better: list, worse: list, tie: list) -> str:
    """Verdict of an "at least as good" claim."""
    if not (better or worse or tie):
        return "not tested (no data)"
    if worse:
        return "not reproduced" if not better else "partly reproduced"
    return "reproduced" if better else "reproduced (differences within noise)"


def _verdict(better: list, worse: list, tie: list) -> str:
    n = len(better) + len(worse) + len(tie)
    if n == 0:
        return "not tested (no data)"
    if len(better) == n:
        return "reproduced"
    if better and not worse:
        return "partly reproduced"
    if not better and not worse:
        return "inconclusive at this scale"
    return "not reproduced" if not better else "partly reproduced"


def claims(results: dict[str, Any]) -> list[dict[str, str]]:
    size = results["plan"]["preset_config"]["sizes"][-1]
    out = []
    g_meta, g_none = f"{size}-global-meta", f"{size}-global-nometa"
    a, b = _bpb(results, g_meta, "full"), _bpb(results, g_none, "none")
    bt, wr, ti, txt = _compare(a, b)
    out.append({"claim": "Metadata conditioning lowers perplexity when the metadata is given (global model with vs without metadata)",
                "verdict": _verdict(bt, wr, ti), "evidence": f"bits/byte, {g_meta} with metadata vs {g_none}: " + "; ".join(txt)})
    a, b = _bpb(results, g_meta, "none"), _bpb(results, g_none, "none")
    bt, wr, ti, txt = _compare(a, b)
    out.append({"claim": "The metadata-trained model does not lose much without metadata at test time",
                "verdict": _no_worse(bt, wr, ti),
                "evidence": f"bits/byte without metadata, {g_meta} vs {g_none}: " + "; ".join(txt)})
    def own_region(kind: str, cond: str) -> dict[str, tuple[float, float]]:
        """Each region-c model's score on continent c."""
        per = {c: _bpb(results, f"{size}-region-{c}-{kind}", cond) for c in CONTINENTS}
        return {c: v[c] for c, v in per.items() if c in v}

    own, glob = own_region("nometa", "none"), _bpb(results, g_none, "none")
    bt, wr, ti, _ = _compare(own, glob)
    ev = []
    for c in (c for c in CONTINENTS if c in own and c in glob):
        cross = [v[0] for k, v in _bpb(results, f"{size}-region-{c}-nometa", "none").items() if k != c]
        ev.append(f"{c}: region model {own[c][0]:.3f} in-region, {sum(cross) / len(cross):.3f} cross-region; global {glob[c][0]:.3f}" if cross
                  else f"{c}: region model {own[c][0]:.3f}, global {glob[c][0]:.3f}")
    out.append({"claim": "Region-specific models beat the (same-budget) global model on their own region", "verdict": _verdict(bt, wr, ti),
                "evidence": "; ".join(ev) or "no region models"})
    own, glob = own_region("meta", "full"), _bpb(results, g_meta, "full")
    bt, wr, ti, _ = _compare(glob, own)
    out.append({"claim": "With metadata, the global model matches region-specific models in their region (within noise or better)",
                "verdict": _no_worse(bt, wr, ti),
                "evidence": "; ".join(f"{c}: global+metadata {glob[c][0]:.3f} vs region+metadata {own[c][0]:.3f}" for c in CONTINENTS
                                      if c in own and c in glob) or "no region models"})
    tm, tn = results["runs"].get(g_meta, {}).get("training", {}), results["runs"].get(g_none, {}).get("training", {})
    if tm.get("final_train_loss") is not None and tn.get("final_train_loss") is not None:
        d = tn["final_train_loss"] - tm["final_train_loss"]
        out.append({"claim": "Learning efficiency: at the same token budget the metadata model reaches a lower training loss on the article text",
                    "verdict": "reproduced" if d > 0.01 else ("inconclusive at this scale" if abs(d) <= 0.01 else "not reproduced"),
                    "evidence": f"final training loss (article tokens only) {tm['final_train_loss']:.4f} with metadata vs {tn['final_train_loss']:.4f} without "
                                f"after {tm['tokens_seen']['input_tokens']:,} / {tn['tokens_seen']['input_tokens']:,} input tokens"})
    url = _bpb(results, f"{size}-global-url", "url")
    full, none = _bpb(results, g_meta, "full"), _bpb(results, g_none, "none")
    ev, part = [], []
    for c in CONTINENTS:
        if c in url and c in full and c in none:
            ev.append(f"{c}: none {none[c][0]:.3f}, URL only {url[c][0]:.3f}, full {full[c][0]:.3f}")
            part.append(url[c][0] < none[c][0] - (url[c][1] + none[c][1]))
    out.append({"claim": "URL-only metadata already gives part of the gain",
                "verdict": "not tested (no data)" if not part else ("reproduced" if all(part) else "partly reproduced" if any(part) else "inconclusive at this scale"),
                "evidence": "; ".join(ev) or "no URL-only model"})
    cd = _bpb(results, f"{size}-global-meta-cooldown", "none")
    bt, wr, ti, txt = _compare(cd, _bpb(results, g_none, "none"))
    out.append({"claim": "Beyond the paper: a MeCo cooldown (last 10% without metadata) is at least as good as no metadata when none is given",
                "verdict": _no_worse(bt, wr, ti), "evidence": "bits/byte without metadata, cooldown vs no-metadata model: " + "; ".join(txt)})
    mcq = results.get("mcq", {})
    if mcq.get("models"):
        ev = []
        for name, m in mcq["models"].items():
            acc = lambda rows, fam, cond: next((r["value"] for r in rows if r["family"] == fam and r["condition"] == cond and r["continent"] == "all"), float("nan"))
            cond = "full" if m["sft"]["metadata_prefix"] else "none"
            ev.append(f"{name}: before {acc(m['before'], 'mcq', cond):.3f} (log-likelihood), after SFT {acc(m['after'], 'mcq', cond):.3f} (log-likelihood), "
                      f"{acc(m['after'], 'gen', cond):.3f} (generated, parse rate shown in the run's eval)")
        out.append({"claim": "Instruction tuning and metadata improve localized MCQ accuracy (chance 0.25)", "verdict": "see numbers (small models sit near chance)",
                    "evidence": f"{mcq['questions']} questions; " + "; ".join(ev)})
    return out


def figures(results: dict[str, Any], out: Path) -> list[str]:
    from metacond.figures import pyplot

    plt = pyplot()
    import numpy as np

    made = []
    size = results["plan"]["preset_config"]["sizes"][-1]
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
        fig.tight_layout()
        fig.savefig(out / "region_matrix.png")
        plt.close(fig)
        made.append("region_matrix.png")
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    x = np.arange(len(CONTINENTS))
    for k, (run, cond, label) in enumerate([(f"{size}-global-nometa", "none", "no metadata"), (f"{size}-global-meta", "none", "metadata model, none given"),
                                            (f"{size}-global-meta", "full", "metadata model, metadata given"), (f"{size}-global-url", "url", "URL-only model")]):
        v = _bpb(results, run, cond)
        ax.bar(x + k * 0.2 - 0.3, [v.get(c, (np.nan, 0))[0] for c in CONTINENTS], 0.2, yerr=[v.get(c, (0, 0))[1] for c in CONTINENTS], capsize=2, label=label)
    ax.set_xticks(x, CONTINENTS)
    ax.set_ylabel("bits per byte")
    ax.set_title("Global models: with vs without metadata (95% CI)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "with_without_metadata.png")
    plt.close(fig)
    made.append("with_without_metadata.png")
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    for n, r in results["runs"].items():
        t = r.get("training", {})
        curve = [p for p in t.get("loss_curve", []) if "loss" in p]
        if not curve or r["run"]["family"] not in ("main", "cooldown") or "region" in n:
            continue
        per_step = t["tokens_seen"]["input_tokens"] / max(1, curve[-1]["step"])
        ax.plot([p.get("num_input_tokens_seen") or p["step"] * per_step for p in curve], [p["loss"] for p in curve], label=n)
    ax.set_xlabel("input tokens")
    ax.set_ylabel("training loss (article tokens)")
    ax.set_title("Learning curves")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "learning_curves.png")
    plt.close(fig)
    made.append("learning_curves.png")
    return made


def write_report(results: dict[str, Any], out: Path) -> None:
    results["claims"] = claims(results)
    results["figures"] = figures(results, out)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    lines = [f"# Localization study ({results['preset']} preset)", "", f"Corpus `{results['input']}`; "
             f"{len(results['runs'])} runs ({results['plan']['paper_runs']} from the paper's grid); stage seconds {results['stage_seconds']}.", "",
             "## Claims", "", "| claim | verdict | evidence |", "|---|---|---|"]
    lines += [f"| {c['claim']} | **{c['verdict']}** | {c['evidence']} |" for c in results["claims"]]
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
    lines += ["", "Figures: " + ", ".join(f"![{f}]({f})" for f in results["figures"]), ""]
    (out / "report.md").write_text("\n".join(lines))
