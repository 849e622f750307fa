"""Shared matplotlib helpers for the suites: a row of panels, one per metric, each drawing the
mean (and standard error across seeds) of the metric against ``x`` with one line per ``series``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from experiments.store import atomic_write

__all__ = ["metric_panels", "pyplot", "save"]


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, out_dir: Path, name: str) -> Path:
    """Save ``fig`` as ``out_dir/name`` (PNG, 120 dpi) atomically (write, then rename: parallel
    sweep jobs regenerating the same figure never leave a torn file), close it, return the path."""
    plt = pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    path = out_dir / name
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120,
                                                   format=path.suffix.lstrip(".") or "png"))
    finally:
        plt.close(fig)
    return path


def metric_panels(df: pd.DataFrame, metrics: tuple[str, ...], *, series: str, x: str,
                  xlabel: str, out_dir: Path, name: str, logx: bool = False,
                  label: str = "{}", zero_line: bool = False) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.3 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        stats = df[df["metric"] == metric].groupby([series, x])["value"].agg(["mean", "sem"])
        for key, g in stats.groupby(level=0):
            ax.errorbar(g.index.get_level_values(1), g["mean"], yerr=g["sem"].fillna(0.0),
                        marker="o", capsize=3, label=label.format(key))
        if zero_line:
            ax.axhline(0.0, color="k", lw=0.6)
        if logx:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_title(metric.replace("_", " "))
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    return save(fig, out_dir, name)
