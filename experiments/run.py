"""Hydra entry point: ``python -m experiments.run [experiment=<suite>] [key=value ...]``.

Without arguments it runs the default benchmark: every suite in its default preset (the main job
at full size, every other suite compact; :attr:`experiments.suites.base.Suite.default_preset`);
every job's rows go to the working store ``outputs/store`` (resumable: complete jobs are skipped),
its tables and figures to ``outputs/`` (:func:`suite_output_dir`) and ``outputs/REPORT.md`` is
regenerated. Nothing under ``results/`` is touched unless ``publish=true`` (what ``make
results`` does through :mod:`experiments.publish`). ``--multirun`` sweeps any key with the joblib
launcher. The global groups (``world``, ``logging``, ``learner``,
``policy``, ``ope``) reach every suite that nests that config.
"""

from __future__ import annotations

import logging
import shlex
import sys
import zlib
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig
from tqdm.auto import tqdm

from estimators.precision import enable_float64
from experiments import suites as suite_registry
from experiments.schema import register, set_values
from experiments.store import ResultStore, config_hash
from experiments.suites.base import quiet_bar

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
        if groups.get("source"):
            takers = [n for n in suite_registry.available()
                      if suite_registry.load(n).nests("source")]
            raise ValueError(f"source: a literature world (world=<file of conf/world/>) runs "
                             f"with one suite that takes any world, not the default benchmark. "
                             f"Fix: add experiment=<one of {takers}>.")
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


# run-time options: where a run writes and what it shows, not what it computes (left out of a
# job's reproduce command, so the same job run from a script or from make results reads alike)
RUNTIME_KEYS = ("store", "output_root", "results_root", "publish", "report", "progress",
                "write_outputs")


def _reproducing(overrides: list[str]) -> list[str]:
    """The overrides that define the job (every one but the :data:`RUNTIME_KEYS`)."""
    return [o for o in overrides if o.lstrip("+~").split("=", 1)[0] not in RUNTIME_KEYS]


def execute(cfg: DictConfig, overrides: list[str] | None = None) -> list[Path]:
    """Run every planned (suite, config, seed) job not already complete in ``cfg.store`` (the
    working store: resumable, never the committed one, so a fresh clone really computes), then
    write the suites' outputs and the report under ``cfg.output_root`` from the working store;
    with ``cfg.publish``, publish the planned jobs into ``<cfg.results_root>/store`` instead and
    write the outputs and report under ``cfg.results_root`` from it. ``overrides``: the job's
    own overrides, recorded as its reproduce command (default: this process's Hydra task
    overrides, or its command line)."""
    jobs = plan(cfg)
    seeds = [int(s) for s in cfg.seeds]
    if not seeds:
        raise ValueError("seeds: empty, so no job would run. Fix: e.g. seeds=[0] or "
                         "'seeds=[0,1,2]' or 'seeds=${range:0,100}'.")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds: {seeds} repeats a seed, which would run a job twice. Fix: "
                         "list each seed once.")
    store = ResultStore(cfg.store)
    command = "python -m experiments.run " + shlex.join(_reproducing(
        _job_overrides() if overrides is None else overrides))
    tracker = _mlflow(cfg)
    written: list[Path] = []
    bar = tqdm(total=len(jobs) * len(seeds), desc="jobs", disable=quiet_bar(cfg.progress))
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
    root, results = Path(cfg.output_root), store
    if cfg.publish:
        root = Path(cfg.results_root)
        results = ResultStore(root / "store")
        if results.root.resolve() != store.root.resolve():
            for suite, config in jobs:
                for seed in seeds:
                    store.publish(results, suite.name, config_hash(suite.name, config), seed)
    if cfg.write_outputs:
        for suite, config in jobs:
            _write_suite_outputs(root, results, suite, config, seeds)
    if cfg.report:
        from experiments.report import write_report

        report = write_report(results, root / "REPORT.md")
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


def suite_output_dir(root: Path, suite, config, seeds: list[int]) -> Path:
    """Where a job's tables and figures go, keyed by the whole job (config and seeds), so no job
    overwrites another's: ``<root>/<suite>/`` for the documented full-size config at its
    published seeds (:attr:`Suite.result_seeds`), ``<root>/compact/<suite>/`` for the compact
    preset at seed 0 (the default benchmark), ``<root>/sweeps/<suite>/<config hash>-seeds-<seeds>/``
    for any other job. ``root`` is ``outputs/`` unless the run publishes."""
    seeds = [int(s) for s in seeds]
    if config == suite.full_config() and tuple(seeds) == tuple(suite.result_seeds):
        return root / suite.name
    if config == suite.compact_config() and seeds == [0]:
        return root / "compact" / suite.name
    label = f"{config_hash(suite.name, config)}-seeds-{_seeds_label(seeds)}"
    return root / "sweeps" / suite.name / label


def _seeds_label(seeds: list[int]) -> str:
    """``0_1_2`` for a few seeds; ``0-99_n100_<crc>`` for many (short, still one per set)."""
    if len(seeds) <= 8:
        return "_".join(map(str, seeds))
    crc = zlib.crc32(",".join(map(str, seeds)).encode()) & 0xFFFF
    return f"{seeds[0]}-{seeds[-1]}_n{len(seeds)}_{crc:04x}"


def _write_suite_outputs(root: Path, store: ResultStore, suite, config,
                         seeds: list[int]) -> None:
    rows = store.read(suite.name, config_hash(suite.name, config))
    if rows.empty:
        return
    rows = rows[rows["seed"].isin(seeds)].reset_index(drop=True)
    out_dir = suite_output_dir(root, suite, config, seeds)
    table = suite.headline(rows)
    if table is None:  # no headline: the report's means across seeds
        from experiments.report import aggregate

        table = aggregate(rows, suite.key_columns).head(40)
    print(f"\n{suite.name} ({len(seeds)} seed{'s' if len(seeds) > 1 else ''}):")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
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


def exit_with_parent(poll_s: float = 1.0) -> bool:
    """In a launcher's worker process (a joblib/loky child of the sweep), exit as soon as the
    sweep's parent process dies, so a killed sweep leaves no workers computing for nobody (loky
    keeps orphaned workers alive until its idle timeout). Started once per process; a no-op in the
    process that owns the run (``multiprocessing.parent_process()`` is ``None``), which must keep
    running if its own parent (a shell) goes away. Returns whether a watch is running. The sweep
    itself resumes from the store: jobs in flight are recomputed, never half-written."""
    import multiprocessing
    import os
    import threading
    import time

    if multiprocessing.parent_process() is None:
        return False
    if any(t.name == "allocbench-parent-watch" for t in threading.enumerate()):
        return True
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:  # re-parented: the sweep's parent is gone
                os._exit(3)

    threading.Thread(target=watch, name="allocbench-parent-watch", daemon=True).start()
    return True


# extras a launcher option needs, for a clear message before Hydra's "Could not find/load"
_LAUNCHER_EXTRAS = {"ray": ("hydra_plugins.hydra_ray_launcher", "ray"),
                    "ray_cluster": ("hydra_plugins.hydra_ray_launcher", "ray"),
                    "slurm": ("hydra_plugins.hydra_submitit_launcher", "cluster")}


def check_launcher_extras(argv: list[str]) -> None:
    """Raise ``ValueError`` naming the ``pip install`` when ``hydra/launcher=<name>`` needs a
    plug-in that is not installed (Hydra alone says only that the config cannot be found)."""
    import importlib.util

    for arg in argv:
        if arg.startswith("hydra/launcher="):
            name = arg.split("=", 1)[1]
            module, extra = _LAUNCHER_EXTRAS.get(name, (None, None))
            if module is not None and importlib.util.find_spec(module) is None:
                raise ValueError(f"hydra/launcher={name}: needs the {module.split('.')[1]} "
                                 f"plug-in, which is not installed. Fix: pip install -e "
                                 f"'.[{extra}]' (or use hydra/launcher=local).")


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    enable_float64()  # this entry point owns its process (estimators.precision)
    exit_with_parent()  # a worker of a killed sweep does not outlive it
    # Hydra sets the root logger to INFO; JAX's backend probe ("Unable to initialize backend
    # 'tpu'") is not news on every run
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    execute(cfg)


if __name__ == "__main__":
    try:
        check_launcher_extras(sys.argv[1:])
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    main()
