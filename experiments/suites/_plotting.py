"""Shared matplotlib helpers for the suites: one style per series name, one legend per figure,
readable log axes, atomic saving, and a row of panels, one per metric, each drawing the mean (and
standard error across seeds) of the metric against ``x`` with one line per ``series``.

**One colour and marker per name, everywhere** (:func:`series_style`): a policy, learner,
estimator or variant is drawn in the same colour and marker in every panel of a figure and in
every figure of every suite, so a reader never re-learns a legend (``oracle`` and ``truth`` are
black stars; ``t@noiseless`` takes ``t``'s colour, dotted). Tests check every suite's figures
against it through :data:`SAVE_HOOKS`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from experiments.store import atomic_write

__all__ = ["SAVE_HOOKS", "figure_legend", "log_axis", "metric_panels", "pyplot", "save",
           "series_style"]

# Canonical order of the series names the suites draw (policies, learners, estimators, test
# methods, loop variants): index i gets colour i of PALETTE and marker i of MARKERS. Names not
# listed get a stable colour from their crc32 (shared across runs, possibly with a listed name).
KNOWN_SERIES = (
    "cost_aware_uplift", "value_only_uplift", "propensity_targeting", "lifecycle_rule", "random",
    "no_offer", "logging", "treat_all", "stale_period0", "retrained", "monitor",
    "no_pacing", "spend_only", "liability", "learning", "accounting", "x_only",
    "x_and_other_programs", "t", "s", "x", "dr", "r", "hurdle", "tarnet", "t_lgbm", "t_mlp",
    "t_bart", "t_ridge", "s_ridge", "x_ridge", "dr_ridge", "zero", "ate", "ips", "snips",
    "clipped_ips", "dm", "sndr", "switch_dr", "dr_os", "naive_z", "cuped", "confidence_sequence",
    "confidence_sequence_cuped", "group_sequential", "static", "gated", "gated_ope_only",
    "recalibrate", "explore_none", "explore_epsilon", "explore_floor", "explore_thompson",
    "skew", "skew_ope_only", "no_drift", "drift_onset", "portfolio", "portfolio_ope_only",
    "uplift_budgeted", "no_email", "all_mens", "all_womens",
)
# fixed styles: the oracle and truth; the budget line; the library default heads (a colour no
# learner of KNOWN_SERIES takes, so the default stands out in every figure)
_FIXED = {"oracle": ("black", "*"), "truth": ("black", "*"), "budget": ("0.45", ""),
          "default": ("#17becf", "X")}
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#e6550d", "#31a354", "#843c39",
           "#7b4173", "#3182bd", "#fd8d3c", "#74c476", "#9e9ac8", "#636363")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")

# callables ``hook(fig, name)`` run by :func:`save` before a figure is written (tests use it to
# check every suite's figures against :func:`series_style`)
SAVE_HOOKS: list = []


def series_style(name: str) -> dict[str, str]:
    """``{"color", "marker"}`` of a series name, the same in every figure. A variant
    ``learner@tag`` (e.g. ``t@noiseless``) takes its learner's colour and marker."""
    import zlib

    base = str(name).split("@")[0]
    if base in _FIXED:
        color, marker = _FIXED[base]
        return {"color": color, "marker": marker}
    if base in KNOWN_SERIES:
        i = KNOWN_SERIES.index(base)
    else:
        i = zlib.crc32(base.encode())
    return {"color": PALETTE[i % len(PALETTE)], "marker": MARKERS[i % len(MARKERS)]}


def figure_legend(fig, axes, **kw):
    """One legend for the whole figure, right of the panels: the labelled artists of every
    panel, each label once (in order of first appearance); per-panel legends are removed."""
    handles, labels = [], []
    for ax in list(getattr(axes, "flat", axes)):
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels and not lab.startswith("_"):
                handles.append(h)
                labels.append(lab)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if not labels:
        return None
    return fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5),
                      frameon=False, **kw)


def _plain_number(v: float, _pos=None) -> str:
    """``2,000`` / ``32,000`` / ``0.05`` / ``1.5``: no exponent notation on tick labels."""
    if v >= 1000 and float(v).is_integer():
        return f"{v:,.0f}"
    return f"{v:.3g}"


def log_axis(ax, axis: str = "x", ticks=None) -> None:
    """A log scale whose ticks are labelled with plain numbers: at ``ticks`` when given (e.g.
    the sample sizes drawn), else at 1-2-5 steps, so a range inside one decade still shows
    labels (matplotlib's default labels only powers of ten)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

    getattr(ax, f"set_{axis}scale")("log")
    target = getattr(ax, f"{axis}axis")
    if ticks is not None:
        getattr(ax, f"set_{axis}ticks")(list(ticks))
    else:
        target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(FuncFormatter(_plain_number))
    target.set_minor_locator(NullLocator())
    target.set_minor_formatter(NullFormatter())


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
    for hook in SAVE_HOOKS:
        hook(fig, name)
    path = out_dir / name
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, bbox_inches="tight",
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
                        capsize=3, label=label.format(key), **series_style(key))
        if zero_line:
            ax.axhline(0.0, color="k", lw=0.6)
        if logx:
            log_axis(ax, "x", sorted(df[x].unique()))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(metric.replace("_", " "))
        ax.set_title(metric.replace("_", " "))
        ax.grid(alpha=0.3)
    figure_legend(fig, axes)
    return save(fig, out_dir, name)
