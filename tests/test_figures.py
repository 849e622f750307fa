"""Figures fit for a paper (issue 15): every suite's figures, drawn from the committed result
store, use the one style mapping (a series name has the same colour in every panel and figure),
have one legend where series repeat across panels, label their axes and, on log axes, their
ticks."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.store import ResultStore
from experiments.suites import _plotting, available, load

REPO = Path(__file__).resolve().parents[1]
STORE = ResultStore(REPO / "results" / "store")


def _series_name(label: str) -> str:
    """The series a legend label stands for: ``IPS (95% CI)`` -> ``ips``."""
    return label.split(" (")[0].strip().lower()


def _line_colour(artist) -> str | None:
    from matplotlib.colors import to_hex

    lines = getattr(artist, "lines", None)  # an errorbar container: (line, caps, bars)
    line = lines[0] if lines else artist
    get = getattr(line, "get_color", None) or getattr(line, "get_facecolor", None)
    if get is None:
        return None
    colour = get()
    return None if colour is None or len(colour) == 0 else to_hex(
        colour if isinstance(colour, str) or len(colour) in (3, 4) else colour[0])


def _check(fig, name: str, problems: list[str]) -> None:
    from matplotlib.colors import to_hex

    fig.canvas.draw()  # tick labels exist only once drawn
    axes = [ax for ax in fig.axes if ax.has_data()]
    labels_per_panel = [set(ax.get_legend_handles_labels()[1]) for ax in axes]
    repeated = {lab for i, a in enumerate(labels_per_panel) for lab in a
                if any(lab in b for b in labels_per_panel[i + 1:])}
    n_legends = len(fig.legends) + sum(ax.get_legend() is not None for ax in axes)
    if repeated and n_legends != 1:
        problems.append(f"{name}: series {sorted(repeated)} repeat across panels but the figure "
                        f"has {n_legends} legends (want one)")
    for ax in axes:
        for artist, label in zip(*ax.get_legend_handles_labels(), strict=True):
            series = _series_name(label)
            if series not in _plotting.KNOWN_SERIES and series not in ("oracle", "truth"):
                continue
            want = to_hex(_plotting.series_style(series)["color"])
            got = _line_colour(artist)
            if got is not None and got != want:
                problems.append(f"{name}: {label!r} drawn {got}, its style is {want}")
        for axis in ("x", "y"):
            # a shared axis is labelled once, on one of its panels (e.g. the bottom row)
            group = getattr(ax, f"get_shared_{axis}_axes")().get_siblings(ax)
            labelled = [a for a in group if _tick_labels(a, axis)]
            if not labelled:
                scale = getattr(ax, f"get_{axis}scale")()
                problems.append(f"{name}: {axis} axis ({scale} scale) without tick labels "
                                f"({ax.get_title()!r})")
            if not any(getattr(a, f"get_{axis}label")() for a in group) and axis == "x" and not (
                    _tick_labels(ax, "x") and not _numeric(ax, "x")):
                problems.append(f"{name}: x axis without a label ({ax.get_title()!r})")


def _tick_labels(ax, axis: str) -> list[str]:
    lo, hi = sorted(getattr(ax, f"get_{axis}lim")())
    k = 0 if axis == "x" else 1
    return [t.get_text() for t in getattr(ax, f"get_{axis}ticklabels")()
            if t.get_text() and lo <= t.get_position()[k] <= hi]


def _numeric(ax, axis: str) -> bool:
    """Whether the axis's tick labels are numbers (a categorical axis names its categories)."""
    labels = _tick_labels(ax, axis)
    try:
        [float(t.replace(",", "").replace("\u2212", "-")) for t in labels]
    except ValueError:
        return False
    return True


def _published_rows(suite_name: str):
    """One seed of the suite's smallest published job (usually the compact preset of the
    default benchmark): it draws every figure the larger jobs draw, in a fraction of the time."""
    best = None
    for meta in STORE.configs():
        if meta["suite"] == suite_name:
            rows = STORE.read(suite_name, meta["config_hash"])
            if rows.empty:
                continue
            rows = rows[rows["seed"] == rows["seed"].min()].reset_index(drop=True)
            if best is None or len(rows) < len(best):
                best = rows
    return best


@pytest.mark.parametrize("suite_name", [n for n in available() if load(n).plot is not None])
def test_every_suite_figure_uses_the_shared_style(suite_name, tmp_path, monkeypatch):
    rows = _published_rows(suite_name)
    if rows is None:
        pytest.skip(f"no published rows of {suite_name} in results/store")
    problems: list[str] = []
    drawn: list[str] = []
    monkeypatch.setattr(_plotting, "SAVE_HOOKS",
                        [lambda fig, name: (drawn.append(name), _check(fig, name, problems))])
    load(suite_name).outputs(rows, tmp_path)
    assert drawn, f"{suite_name} drew no figure"
    assert not problems, "\n".join(problems)


def test_series_style_is_one_colour_per_name_and_variants_share_it():
    style = _plotting.series_style
    assert style("t@noiseless") == style("t")
    assert style("oracle")["color"] == "black"
    known = [style(n)["color"] for n in _plotting.KNOWN_SERIES[:len(_plotting.PALETTE)]]
    assert len(set(known)) == len(known)  # the first 20 names: 20 distinct colours
    assert style("some_plugin") == style("some_plugin")  # stable for unknown names
