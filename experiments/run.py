"""Hydra entry point: ``python -m experiments.run [experiment=<suite>] [key=value ...]``.

Without arguments it runs the default benchmark: every suite in its default preset (the main job
at full size, every other suite compact; :attr:`experiments.suites.base.Suite.default_preset`);
every job's rows go to the working store ``outputs/store`` (resumable: complete jobs are skipped),
are published into ``results/store`` and ``results/REPORT.md`` is regenerated. ``--multirun``
sweeps any key with the joblib launcher. The global groups (``world``, ``logging``, ``learner``,
``policy``, ``ope``) reach every suite that nests that config.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig
from tqdm.auto import tqdm

from estimators.precision import enable_float64
from experiments import suites as suite_registry
from experiments.schema import register, set_values
from experiments.store import ResultStore, config_hash

register()


def _groups(cfg: DictConfig) -> dict[str, dict[str, Any]]:
    """The global group values that were set (by a group file or an override)."""
    from experiments.configs import GROUPS

    return {group: set_values(cfg[group]) for group in GROUPS}


def plan(cfg: DictConfig) -> list[tuple[suite_registry.Suite, Any]]:
    """Resolve ``experiment`` into (suite, config) pairs; every config error surfaces here."""
    params = set_values(cfg.experiment.params)
    groups = _groups(cfg)
    if cfg.experiment.suite == "default":
        if params:
            raise ValueError("experiment.params: the default experiment runs every suite; "
                             "params need one suite. Fix: add experiment=<suite>.")
        jobs = []
        for name in suite_registry.available():
            suite = suite_registry.load(name)
            if not suite.in_default:
                continue
            nested = {g: v for g, v in groups.items() if suite.nests(g)}
            config = suite.make_config(groups=nested,
                                       compact=suite.default_preset == "compact")
            reason = suite.why_unavailable(config)
            if reason:  # e.g. real data not on this machine: the rest of the benchmark runs
                print(f"[skip] {name}: {reason}", file=sys.stderr)
                continue
            jobs.append((suite, config))
        return jobs
    suite = suite_registry.load(cfg.experiment.suite)
    return [(suite, suite.make_config(params, groups, compact=cfg.experiment.compact))]


def execute(cfg: DictConfig) -> list[Path]:
    """Run every planned (suite, config, seed) job not already complete in ``cfg.store`` (the
    working store: resumable, never the committed one, so a fresh clone really computes), then
    publish the planned jobs into ``cfg.publish_store`` (the results store behind ``results/``),
    write the suites' outputs and regenerate the report from the published store."""
    jobs = plan(cfg)
    seeds = [int(s) for s in cfg.seeds]
    if not seeds:
        raise ValueError("seeds: empty, so no job would run. Fix: e.g. seeds=[0] or "
                         "'seeds=[0,1,2]' or 'seeds=${range:0,100}'.")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds: {seeds} repeats a seed, which would run a job twice. Fix: "
                         "list each seed once.")
    store = ResultStore(cfg.store)
    command = "python -m experiments.run " + shlex.join(_job_overrides())
    tracker = _mlflow(cfg)
    written: list[Path] = []
    bar = tqdm(total=len(jobs) * len(seeds), desc="jobs", disable=not cfg.progress)
    for suite, config in jobs:
        chash = config_hash(suite.name, config)
        pending = []
        for seed in seeds:
            if store.is_complete(suite.name, chash, seed):
                tqdm.write(f"[skip] {suite.name} {chash} seed={seed}: already complete")
                bar.update(1)
            else:
                pending.append(seed)
        for seed, rows in _run_seeds(suite, config, pending, cfg.progress):
            written.append(store.write(suite.name, config, seed, rows, command=command))
            if tracker is not None:
                tracker(suite.name, chash, seed, config, rows)
            bar.update(1)
    bar.close()
    results = store
    if cfg.write_outputs and cfg.publish_store:
        results = ResultStore(cfg.publish_store)
        if results.root.resolve() != store.root.resolve():
            for suite, config in jobs:
                for seed in seeds:
                    store.publish(results, suite.name, config_hash(suite.name, config), seed)
    if cfg.write_outputs:
        for suite, config in jobs:
            _write_suite_outputs(cfg, results, suite, config, seeds)
    if cfg.report:
        from experiments.report import write_report

        report = write_report(results, Path(cfg.results_root) / "REPORT.md")
        print(f"wrote {report}")
    return written


def _run_seeds(suite, config, seeds: list[int], progress: bool):
    """``(seed, rows)`` of each pending seed, run as one batch (:meth:`Suite.rows`: the suite's
    ``run_batch`` where it has one, its seeds ``vmap``-ed); stored one file per seed."""
    if not seeds:
        return
    rows = suite.rows(config, seeds=seeds, progress=progress)
    for seed in seeds:
        yield seed, rows[rows["seed"] == seed].reset_index(drop=True)


def _job_overrides() -> list[str]:
    """This job's own overrides (under --multirun, one point of the sweep, not the sweep)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return [o for o in HydraConfig.get().overrides.task if not o.startswith("hydra.")]
    return sys.argv[1:]


def suite_output_dir(root: Path, suite, config) -> Path:
    """Where a suite's tables and figures go: ``<root>/<suite>/`` for its documented full-size
    config only, ``<root>/compact/<suite>/`` for the compact one, ``<root>/sweeps/<suite>/<config
    hash>/`` for any other (so sweeps never overwrite the committed outputs or each other)."""
    if config == suite.full_config():
        return root / suite.name
    if config == suite.compact_config():
        return root / "compact" / suite.name
    return root / "sweeps" / suite.name / config_hash(suite.name, config)


def _write_suite_outputs(cfg: DictConfig, store: ResultStore, suite, config,
                         seeds: list[int]) -> None:
    rows = store.read(suite.name, config_hash(suite.name, config))
    if rows.empty:
        return
    rows = rows[rows["seed"].isin(seeds)].reset_index(drop=True)
    out_dir = suite_output_dir(Path(cfg.results_root), suite, config)
    table = suite.headline(rows)
    if table is not None:
        print(f"\n{suite.name}:")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    for path in suite.outputs(rows, out_dir):
        print(f"wrote {path}")


def _mlflow(cfg: DictConfig):
    if not cfg.mlflow.enabled:
        return None
    try:
        import mlflow
    except ImportError as err:
        raise ValueError("mlflow.enabled: MLflow is not installed. Fix: pip install "
                         "'allocbench[tracking]' or set mlflow.enabled=false.") from err
    mlflow.set_tracking_uri(cfg.mlflow.tracking_uri)
    mlflow.set_experiment(cfg.mlflow.experiment_name)

    def track(suite: str, chash: str, seed: int, config: Any, rows) -> None:
        from experiments.store import flatten

        with mlflow.start_run(run_name=f"{suite}-{chash}-seed{seed}"):
            mlflow.log_params({"suite": suite, "config_hash": chash, "seed": seed,
                               **{k: str(v)[:250] for k, v in flatten(config).items()}})
            means = rows.groupby("metric")["value"].mean()
            mlflow.log_metrics({str(k): float(v) for k, v in means.items()})

    return track


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    enable_float64()  # this entry point owns its process (estimators.precision)
    execute(cfg)


if __name__ == "__main__":
    main()
