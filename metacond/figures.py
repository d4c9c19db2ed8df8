"""Matplotlib for writing PNG files (no display), shared by every report and builder that draws."""

from __future__ import annotations


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def finish(fig, ax, path, *, xlabel: str, ylabel: str, title: str, legend_size: int = 7) -> None:
    """Label one-panel figures the same way everywhere, write the PNG and free the figure."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=legend_size)
    fig.tight_layout()
    fig.savefig(path)
    import matplotlib.pyplot as plt

    plt.close(fig)
