"""Matplotlib for writing PNG files (no display), shared by every report and builder that draws."""

from __future__ import annotations


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def save(fig, path, suptitle: str | None = None) -> None:
    """Lay out, write the PNG and free the figure (open figures pile up over a study's many plots)."""
    import matplotlib.pyplot as plt

    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def finish(fig, ax, path, *, xlabel: str, ylabel: str, title: str, legend_size: int = 7) -> None:
    """Label one-panel figures the same way everywhere, then ``save``."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=legend_size)
    save(fig, path)
