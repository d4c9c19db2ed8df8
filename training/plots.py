"""PNG figures of training runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_loss_curve(log_history: list[dict[str, Any]], path: str | Path, cooldown_step: int | None = None, title: str = "") -> Path | None:
    from metacond.figures import pyplot

    plt = pyplot()

    train = [(h["step"], h["loss"]) for h in log_history if "loss" in h and "step" in h]
    ev = [(h["step"], h["eval_loss"]) for h in log_history if "eval_loss" in h]
    if not train and not ev:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    if train:
        ax.plot(*zip(*train), label="train loss", lw=1.5)
    if ev:
        ax.plot(*zip(*ev), "o-", label="validation loss", lw=1.2, ms=3)
    if cooldown_step is not None:
        ax.axvline(cooldown_step, color="gray", ls="--", lw=1, label="cooldown (no metadata)")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (nats / scored token)")
    ax.set_title(title or "training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
