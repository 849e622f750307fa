"""``python -m experiments.report``: aggregate a result store into a ``REPORT.md``.

For every stored (suite, config) it tabulates each metric's mean across seeds with a 95% CI
(``mean -/+ t_{0.975, S-1} sd / sqrt(S)``; a single seed shows its value), and bias, RMSE and
coverage where the rows store the truth beside an estimate; regenerates the suite's figures from
the stored rows; and prints the command that reproduces the rows. Written as ``REPORT.md`` and as
one HTML page ``REPORT.html`` with the figures inline (:func:`write_report`).
"""

from __future__ import annotations

import argparse
import html
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from experiments.store import ResultStore, atomic_write

__all__ = ["SUITE_ORDER", "aggregate", "fmt_number", "summarise", "with_truth", "write_report"]

_VALUE_COLUMNS = {"suite", "config_hash", "seed", "replicate_seed", "value", "stderr", "ci_low",
                  "ci_high", "ess"}
MAX_TABLE_ROWS = 80


def aggregate(rows: pd.DataFrame, key_columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Mean, 95% CI across seeds and number of seeds per (key columns, metric). ``key_columns``:
    the suite's declared :attr:`~experiments.suites.base.Suite.key_columns`; without them, every
    non-value, non-config column with few distinct values (for rows of unknown origin)."""
    if key_columns is not None:
        keys = list(dict.fromkeys([c for c in key_columns if c in rows] + ["metric"]))
    else:
        keys = [c for c in rows.columns if c not in _VALUE_COLUMNS and not c.startswith("cfg.")
                and (not pd.api.types.is_float_dtype(rows[c]) or rows[c].nunique() <= 20)]
    g = rows.groupby(keys, dropna=False, sort=False)["value"]
    out = g.agg(mean="mean", sd="std", seeds="count").reset_index()
    t = stats.t.ppf(0.975, np.maximum(out["seeds"] - 1, 1))
    half = np.where(out["seeds"] > 1, t * out["sd"] / np.sqrt(out["seeds"]), np.nan)
    out["ci_low"], out["ci_high"] = out["mean"] - half, out["mean"] + half
    return out.drop(columns="sd")


# The order sections appear in (then any other suite, alphabetically): the headline job first,
# then the decision layer, the learners, off-policy evaluation, the design-note lessons, real
# data and the closed loop.
SUITE_ORDER = ("main", "allocation", "lessons", "menu_size", "pacing", "learners", "confounded",
               "selection", "net_score", "ihdp", "nie_wager", "lbcf", "ope", "horizons",
               "interference", "portfolio",
               "drift", "hillstrom", "peeking", "online")
TIMING = ("fit_seconds", "seconds", "wall_seconds")  # metrics reported apart from results


def _is_timing(metric: str) -> bool:
    return metric in TIMING or metric.endswith("_seconds")


def fmt_number(v: Any) -> str:
    """4 significant digits; round-off zeros (``|v| < 1e-12``) print as ``0``; NaN blank."""
    if isinstance(v, float | np.floating):
        if np.isnan(v):
            return ""
        return "0" if abs(v) < 1e-12 else f"{v:.4g}"
    return str(v)


def with_truth(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Bias and CI coverage against truth, where the rows carry it: rows with ``estimator ==
    "truth"`` give the true value of their (keys, seed); every other estimator's row gains
    ``error = value - truth`` and ``covered = ci_low <= truth <= ci_high``. Rows without a truth
    are returned unchanged."""
    if "estimator" not in rows or not (rows["estimator"] == "truth").any():
        return rows
    on = [k for k in keys if k != "estimator" and k in rows] + ["seed"]
    truth = rows[rows["estimator"] == "truth"][[*on, "value"]].rename(columns={"value": "truth"})
    out = rows.merge(truth, on=on, how="left")
    est = (out["estimator"] != "truth") & out["truth"].notna()
    out["error"] = np.where(est, out["value"] - out["truth"], np.nan)
    if {"ci_low", "ci_high"} <= set(out.columns):
        covered = (out["ci_low"] <= out["truth"]) & (out["truth"] <= out["ci_high"])
        out["covered"] = np.where(est & out["ci_low"].notna(), covered.astype(float), np.nan)
    return out.drop(columns="truth")


def summarise(rows: pd.DataFrame, key_columns: tuple[str, ...] | None) -> pd.DataFrame:
    """:func:`aggregate` plus, where the rows have a truth, ``bias`` (mean error), ``rmse`` and
    ``coverage`` (share of seeds whose CI holds the truth) per estimator."""
    agg = aggregate(rows, key_columns)
    keys = [c for c in agg.columns if c not in ("mean", "seeds", "ci_low", "ci_high")]
    scored = with_truth(rows, keys)
    if "error" not in scored:
        return agg
    g = scored.groupby(keys, dropna=False, sort=False)
    extra = g.agg(bias=("error", "mean"),
                  rmse=("error", lambda e: float(np.sqrt(np.nanmean(np.square(e))))
                        if e.notna().any() else np.nan),
                  **({"coverage": ("covered", "mean")} if "covered" in scored else {}))
    return agg.merge(extra.reset_index(), on=keys, how="left")


# ------------------------------------------------------------------------------ report blocks
# A report is a list of blocks rendered twice, to Markdown and to one self-contained HTML page:
# ("h", level, text, anchor), ("p", text), ("table", DataFrame), ("img", path),
# ("details", summary, [blocks]), ("code", text).


def _label(suite: Any, meta: dict, seeds: list[int]) -> tuple[str, str, int]:
    """(human label, reproduce command, sort rank) of a stored job: full size at the published
    seeds, compact, or a sweep with the fields it changes."""
    from experiments.store import dotted, flatten

    config = dotted(meta["config"])
    command = meta["command"].strip()
    seed_arg = f"'seeds=[{','.join(map(str, seeds))}]'"
    if suite is None:
        return "plug-in suite", f"{command} {seed_arg}", 3
    full, compact = dotted(flatten(suite.full_config())), dotted(flatten(suite.compact_config()))
    if command in ("python -m experiments.run", ""):
        label, rank = "default benchmark (`make run`)", 2
    elif config == full:
        label = "full size"
        rank = 0 if tuple(seeds) == tuple(suite.result_seeds) else 1
    elif config == compact:
        label, rank = "compact preset", 2
    else:
        base = compact if sum(config.get(k) != v for k, v in compact.items()) < sum(
            config.get(k) != v for k, v in full.items()) else full
        changed = [f"{k}={config.get(k)}" for k, v in base.items() if config.get(k) != v]
        name = "compact" if base is compact else "full size"
        label, rank = f"sweep from {name}: {', '.join(changed) or '(same)'}", 3
    if "seeds=" not in command:
        command = f"{command} {seed_arg}"
    if rank == 2 and label.startswith("compact") and "experiment.compact" not in command:
        command = f"{command} experiment.compact=true"
    return label, command, rank


def _blocks(store: ResultStore, fig_root: Path, source: str) -> list[tuple]:
    from experiments import suites as registry

    by_suite: dict[str, list[tuple]] = {}
    for meta in store.configs():
        rows = store.read(meta["suite"], meta["config_hash"])
        if not rows.empty:
            by_suite.setdefault(meta["suite"], []).append((meta, rows))
    order = [s for s in SUITE_ORDER if s in by_suite] + sorted(set(by_suite) - set(SUITE_ORDER))
    summary: list[tuple] = [("h", 2, "Summary", "summary"),
                            ("p", "The headline table of each suite's documented job (full size "
                             "at its published seeds where stored), in the order of the "
                             "sections below.")]
    sections: list[tuple] = []
    timings: list[pd.DataFrame] = []
    for name in order:
        try:
            suite = registry.load(name)
        except ValueError:  # rows of a plug-in suite that is not importable here
            suite = None
        jobs = []
        for meta, rows in by_suite[name]:
            seeds = sorted(int(s) for s in rows["seed"].unique())
            label, command, rank = _label(suite, meta, seeds)
            jobs.append((rank, label, command, seeds, meta, rows))
        jobs.sort(key=lambda j: (j[0], j[1]))
        sections.append(("h", 2, name, name))
        for i, (_, label, command, seeds, meta, rows) in enumerate(jobs):
            timing = rows[rows["metric"].map(_is_timing)]
            if not timing.empty:
                t = aggregate(timing, suite.key_columns if suite else None)
                timings.append(t.assign(suite=name, job=label))
            rows = rows[~rows["metric"].map(_is_timing)]
            head = suite.headline(rows) if suite is not None else None
            table = summarise(rows, suite.key_columns if suite else None)
            anchor = f"{name}-{meta['config_hash']}"
            sections += [("h", 3, f"{name}: {label}", anchor),
                         ("p", f"Seeds {', '.join(map(str, seeds))}; config "
                          f"`{meta['config_hash']}`."), ("code", command)]
            if i == 0:
                summary += [("h", 3, f"[{name}](#{name}): {label}", f"summary-{name}"),
                            ("table", head if head is not None else table.head(12))]
            if head is not None:
                sections.append(("table", head))
            try:
                figs = suite.figures(rows, fig_root / f"{name}-{meta['config_hash']}") \
                    if suite else []
            except Exception as err:  # a figure must not hide the table
                sections.append(("p", f"(figure failed: {err})"))
                figs = []
            sections += [("img", f) for f in figs]
            detail = [("table", table.head(MAX_TABLE_ROWS))]
            if len(table) > MAX_TABLE_ROWS:
                detail.append(("p", f"({len(table) - MAX_TABLE_ROWS} more rows in the store.)"))
            detail.append(("code", json.dumps(meta["config"], indent=1, sort_keys=True)))
            sections.append(("details", "all metrics (mean, 95% CI across seeds"
                             + (", bias, RMSE and coverage against truth"
                                if "coverage" in table else "") + ") and config", detail))
    worlds = _worlds_blocks(store, set(order))
    sections = worlds + sections
    contents = ["[summary](#summary)", *(["[worlds](#worlds)"] if worlds else []),
                *(f"[{n}](#{n})" for n in order)]
    if timings:
        contents.append("[timings](#timings)")
    out = [("h", 1, "allocbench report", "top"),
           ("p", f"Generated by `python -m experiments.report` from the result store "
            f"`{source}`. Means across seeds with 95% t-intervals (blank for one seed); where a "
            "suite stores the truth beside an estimate, bias, RMSE and CI coverage across seeds "
            "too. Timings are listed apart, at the end."),
           ("p", "Contents: " + " · ".join(contents)), *summary, *sections]
    if timings:
        t = pd.concat(timings, ignore_index=True)
        front = ["suite", "job"]
        out += [("h", 2, "Timings", "timings"),
                ("p", "Wall-clock seconds measured by the suites (machine-dependent, not "
                 "results)."), ("table", t[front + [c for c in t.columns if c not in front]])]
    return out


# the suite that replays a registered world's published protocol, beside its table
WORLD_SUITES = {"nie_wager": "nie_wager", "lbcf": "lbcf", "hillstrom": "hillstrom",
                "ihdp": "ihdp"}


def _worlds_blocks(store: ResultStore, stored_suites: set[str]) -> list[tuple]:
    """The page of each registered literature world (:data:`simulators.sources.SOURCES`): its
    ``conf/world/`` files, the published figures it sits beside, and ours: the stored jobs that
    ran on it (suites nesting ``source``) and the suite that replays its published protocol,
    each with the command that reproduces it."""
    from simulators.sources import SOURCES

    conf = Path(__file__).resolve().parents[1] / "conf" / "world"
    files: dict[str, list[str]] = {}
    for path in sorted(conf.glob("*.yaml")):
        text = path.read_text()
        for name in SOURCES:
            if f"name: {name}\n" in text:
                files.setdefault(name, []).append(path.stem)
    ran: dict[str, list[tuple[str, str, str]]] = {}
    for meta in store.configs():
        world = (meta["config"].get("source") or {}).get("name")
        if world in SOURCES:
            ran.setdefault(world, []).append((meta["suite"], meta["config_hash"],
                                              meta["command"].strip()))
    out: list[tuple] = [("h", 2, "Worlds", "worlds"),
                        ("p", "Each literature or semi-synthetic world with exact truth: the "
                         "`conf/world/` file that selects it (`world=<file>`, for the suites "
                         "that nest a source: learners, ope, allocation), the published figures "
                         "it sits beside, and ours with the command that reproduces them.")]
    for name, world in SOURCES.items():
        out += [("h", 3, f"world: {name}", f"world-{name}"), ("p", world.reference),
                ("p", "Configs: " + (", ".join(f"`world={f}`" for f in files.get(name, []))
                       or "none"))]
        own = WORLD_SUITES.get(name)
        if own in stored_suites:
            out.append(("p", f"Published protocol replayed: the [{own}](#{own}) suite."))
        if name == "obp":
            out.append(("p", "OBP's own estimators on our logs: `results/obp/"
                         "obp_side_by_side.md` (`scripts/obp_side_by_side.py`)."))
        for suite, chash, command in sorted(ran.get(name, []), key=lambda r: (r[0], r[2])):
            picked = [a.split("=", 1)[1] for a in command.split() if a.startswith("world=")]
            label = f"world={picked[0]}" if picked else name
            out += [("p", f"Ours: [{suite} on {label}](#{suite}-{chash})"),
                    ("code", command)]
    return out


def _md_table(df: pd.DataFrame) -> str:
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join(fmt_number(v) for v in row) + " |"
            for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def _markdown(blocks: list[tuple], base: Path) -> list[str]:
    lines: list[str] = []
    for b in blocks:
        if b[0] == "h":
            lines += [f'{"#" * b[1]} {b[2]}', ""]
        elif b[0] == "p":
            lines += [b[1], ""]
        elif b[0] == "code":
            lines += ["```", b[1], "```", ""]
        elif b[0] == "table":
            lines += [_md_table(b[1]), ""]
        elif b[0] == "img":
            lines += [f"![{Path(b[1]).stem}]({os.path.relpath(b[1], base)})", ""]
        elif b[0] == "details":
            lines += [f"<details><summary>{b[1]}</summary>", "", *_markdown(b[2], base),
                      "</details>", ""]
    return lines


def _inline(text: str) -> str:
    """``code`` and [label](#anchor) of the Markdown text, as HTML (everything else escaped)."""
    import re

    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\[([^\]]+)\]\((#[^)]+)\)", r'<a href="\2">\1</a>', out)


def _html(blocks: list[tuple], base: Path) -> list[str]:
    parts: list[str] = []
    for b in blocks:
        if b[0] == "h":
            parts.append(f'<h{b[1]} id="{html.escape(b[3])}">{_inline(b[2])}</h{b[1]}>')
        elif b[0] == "p":
            parts.append(f"<p>{_inline(b[1])}</p>")
        elif b[0] == "code":
            parts.append(f"<pre><code>{html.escape(b[1])}</code></pre>")
        elif b[0] == "table":
            df = b[1]
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
            body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt_number(v))}</td>" for v in row)
                           + "</tr>" for row in df.itertuples(index=False))
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif b[0] == "img":
            src = html.escape(os.path.relpath(b[1], base))
            parts.append(f'<figure><img src="{src}" alt="{html.escape(Path(b[1]).stem)}">'
                         "</figure>")
        elif b[0] == "details":
            parts.append(f"<details><summary>{html.escape(b[1])}</summary>"
                         + "".join(_html(b[2], base)) + "</details>")
    return parts


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "th{background:#f3f3f3}img{max-width:100%}pre{background:#f6f6f6;padding:0.5em;"
        "overflow-x:auto}details{margin:0.5em 0}")


def write_report(store: ResultStore, path: str | Path, source: str | None = None) -> Path:
    """Write ``REPORT.md`` and ``REPORT.html`` (one page, the figures inline by relative path)
    beside it, with the figures under ``figures/``, atomically. Layout: a summary (each suite's
    headline table), then one section per suite in :data:`SUITE_ORDER`, each job labelled
    (full size / compact / sweep and what it changes) with its reproduce command, headline
    table, figures and, folded, every metric with bias/RMSE/coverage against truth where the
    suite stores one; timings apart at the end. ``source``: the store path the report names
    (default: the store's root; ``make results`` builds in a staging folder)."""
    path = Path(path)
    blocks = _blocks(store, path.parent / "figures", source or str(store.root))
    md = "\n".join(_markdown(blocks, path.parent))
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>allocbench report</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(_html(blocks, path.parent)) + "\n</body></html>\n")
    atomic_write(path, lambda tmp: Path(tmp).write_text(md))
    atomic_write(path.with_suffix(".html"), lambda tmp: Path(tmp).write_text(page))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description="Aggregate the result store into REPORT.md")
    parser.add_argument("--store", default="outputs/store",
                        help="result store to aggregate (results/store: the published one)")
    parser.add_argument("--out", default="outputs/REPORT.md")
    args = parser.parse_args()
    print(write_report(ResultStore(args.store), args.out))


if __name__ == "__main__":
    main()
