"""Hydra entry point: ``python -m experiments.run [experiment=<suite>] [key=value ...]``.

Without arguments it runs the default benchmark: the main job at full size (its table printed,
``results/main/`` written) and every other available suite in its compact variant; every job's rows
go to the result store (resumable: complete jobs are skipped) and ``results/REPORT.md`` is
regenerated. ``--multirun`` sweeps any key with the joblib launcher.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from experiments import suites as suite_registry
from experiments.schema import register
from experiments.store import ResultStore, config_hash

register()


def _main_params(cfg: DictConfig) -> dict[str, Any]:
    """The global groups (world, logging, learner, policy, ope) feed the main job."""
    return {"n_offers": cfg.world.n_offers, "logging": cfg.logging.kind,
            "budget_per_user": cfg.policy.budget_per_user, "ridge_alpha": cfg.learner.value_alpha,
            "ci_level": cfg.ope.ci_level}


def plan(cfg: DictConfig) -> list[tuple[suite_registry.Suite, Any]]:
    """Resolve ``experiment`` into (suite, config) pairs; every config error surfaces here."""
    params = OmegaConf.to_container(cfg.experiment.params, resolve=True)
    if cfg.experiment.suite == "default":
        if params:
            raise ValueError("experiment.params: the default experiment runs every suite; "
                             "params need one suite. Fix: add experiment=<suite>.")
        jobs = []
        for name in suite_registry.available():
            if name in suite_registry.NOT_IN_DEFAULT:
                continue
            suite = suite_registry.load(name)
            if name == "main":
                jobs.append((suite, suite.make_config(_main_params(cfg), compact=False)))
            else:
                jobs.append((suite, suite.make_config({}, compact=True)))
        return jobs
    suite = suite_registry.load(cfg.experiment.suite)
    if suite.name == "main":
        params = {**_main_params(cfg), **params}
    return [(suite, suite.make_config(params, compact=cfg.experiment.compact))]


def execute(cfg: DictConfig) -> list[Path]:
    """Run every planned (suite, config, seed) job not already complete in the store."""
    jobs = plan(cfg)
    store = ResultStore(cfg.store)
    command = "python -m experiments.run " + " ".join(_job_overrides())
    tracker = _mlflow(cfg)
    written: list[Path] = []
    todo = [(s, c, seed) for s, c in jobs for seed in cfg.seeds]
    for suite, config, seed in tqdm(todo, desc="jobs", disable=not cfg.progress):
        chash = config_hash(suite.name, config)
        if store.is_complete(suite.name, chash, seed):
            tqdm.write(f"[skip] {suite.name} {chash} seed={seed}: already complete")
            continue
        rows = suite.module.run(config, seed=seed, progress=cfg.progress)
        written.append(store.write(suite.name, config, seed, rows, command=command))
        if tracker is not None:
            tracker(suite.name, chash, seed, config, rows)
    if cfg.write_outputs:
        for suite, config in jobs:
            _write_suite_outputs(cfg, store, suite, config)
    if cfg.report:
        from experiments.report import write_report

        write_report(store, Path(cfg.results_root) / "REPORT.md")
    return written


def _job_overrides() -> list[str]:
    """This job's own overrides (under --multirun, one point of the sweep, not the sweep)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return [o for o in HydraConfig.get().overrides.task if not o.startswith("hydra.")]
    return sys.argv[1:]


def _write_suite_outputs(cfg: DictConfig, store: ResultStore, suite, config) -> None:
    rows = store.read(suite.name, config_hash(suite.name, config))
    if rows.empty:
        return
    rows = rows[rows["seed"].isin(list(cfg.seeds))]
    # compact runs never overwrite the committed full-size outputs of a suite
    compact = config == suite.config_class.compact() and config != suite.config_class()
    out_dir = Path(cfg.results_root) / ("compact" if compact else "") / suite.name
    if suite.name == "main":
        suite.module.write_outputs(rows, out_dir)
    elif hasattr(suite.module, "write_results"):
        suite.module.write_results(rows, out_dir)
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        rows.to_csv(out_dir / f"{suite.name}.csv", index=False)
        suite.module.plot(rows, out_dir)


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
    execute(cfg)


if __name__ == "__main__":
    main()
