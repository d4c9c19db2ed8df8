"""Matplotlib for writing PNG files (no display), shared by every report and builder that draws."""

from __future__ import annotations


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt
