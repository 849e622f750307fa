"""Hydra entry point: ``python -m experiments.run [experiment=<suite>] [key=value ...]``.

Without arguments it runs the default benchmark: the main job at full size (its table printed,
``results/main/`` written) and every other available suite in its compact variant; every job's rows
go to the working store ``outputs/store`` (resumable: complete jobs are skipped), are published
into ``results/store`` and ``results/REPORT.md`` is regenerated. ``--multirun`` sweeps any key
with the joblib launcher.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, ListConfig, OmegaConf
from tqdm.auto import tqdm

from experiments import suites as suite_registry
from experiments.schema import register
from experiments.store import ResultStore, config_hash

register()


# global group fields that configure the main job (MainSuiteConfig), under the same name except
# the renamed ones; every group field is listed, so a group override is never silently ignored
_GROUP_FIELDS = {
    "world": ("n_continuous", "n_binary", "n_offers", "n_programs"),
    "logging": ("kind", "offer", "treat_prob", "temperature", "prior_noise", "epsilon"),
    "learner": ("value_alpha", "cost_alpha"),
    "policy": ("budget_per_user",),
    "ope": ("estimators", "ci_level"),
}
_RENAMED = {"logging.kind": "logging", "logging.offer": "logging_offer"}


def _plain(value: Any) -> Any:
    """OmegaConf containers as hashable plain values (lists -> tuples)."""
    if isinstance(value, DictConfig | ListConfig):
        value = OmegaConf.to_container(value, resolve=True)
    return tuple(_plain(v) for v in value) if isinstance(value, list | tuple) else value


def _group_settings(cfg: DictConfig) -> dict[str, tuple[str, Any]]:
    """Global group fields that differ from their schema defaults: ``{main-job key: (group.field,
    value)}``. ``learner.name`` must name the main job's learner (T-learner, ridge heads)."""
    from experiments.schema import RunSchema

    defaults = OmegaConf.structured(RunSchema)
    if cfg.learner.name != defaults.learner.name:
        raise ValueError(f"learner.name: the main job's heads are {defaults.learner.name!r} "
                         f"(T-learners on ridge; penalties learner.value_alpha/cost_alpha), got "
                         f"{cfg.learner.name!r}. Fix: use experiment=byo with "
                         "experiment.params.learner={_target_: ...} for another learner.")
    out = {}
    for group, fields in _GROUP_FIELDS.items():
        unknown = set(cfg[group]) - set(fields) - ({"name"} if group == "learner" else set())
        if unknown:  # a schema field nobody maps would be silently ignored
            raise ValueError(f"{group}: fields {sorted(unknown)} are not used by any job. Fix: "
                             "map them in experiments/run.py _GROUP_FIELDS.")
        for name in fields:
            value = _plain(cfg[group][name])
            if value != _plain(defaults[group][name]):
                where = f"{group}.{name}"
                out[_RENAMED.get(where, name)] = (where, value)
    return out


def _main_params(cfg: DictConfig, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The main job's parameters: the global groups (world, logging, learner, policy, ope) and
    ``experiment.params``; a key set both ways to different values is an error."""
    from experiments.main_benchmark import MainSuiteConfig

    default = MainSuiteConfig()
    explicit = {k: _plain(v) for k, v in (params or {}).items()
                if _plain(v) != _plain(getattr(default, k, None))}
    for key, (where, value) in _group_settings(cfg).items():
        if key in explicit and explicit[key] != value:
            raise ValueError(f"experiment.params.{key}: {explicit[key]!r} conflicts with "
                             f"{where}={value!r}. Fix: set it in one place.")
        explicit[key] = value
    return explicit


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
            if name == "main":  # the global groups configure the main job
                config = suite.make_config(_main_params(cfg), compact=False)
            else:
                config = suite.make_config({}, compact=True)
            reason = getattr(suite.module, "unavailable", lambda _: None)(config)
            if reason:  # e.g. real data not on this machine: the rest of the benchmark runs
                print(f"[skip] {name}: {reason}", file=sys.stderr)
                continue
            jobs.append((suite, config))
        return jobs
    suite = suite_registry.load(cfg.experiment.suite)
    if suite.name == "main":
        params = _main_params(cfg, params)
    else:
        settings = _group_settings(cfg)
        if settings:
            where = sorted(w for w, _ in settings.values())
            raise ValueError(f"{where[0]}: suite {suite.name!r} does not read the global groups "
                             f"(world, logging, learner, policy, ope configure the main job); "
                             f"set here: {where}. Fix: use the suite's experiment.params.* "
                             f"(conf/experiment/{suite.name}.yaml) or drop the override.")
    return [(suite, suite.make_config(params, compact=cfg.experiment.compact))]


def execute(cfg: DictConfig) -> list[Path]:
    """Run every planned (suite, config, seed) job not already complete in ``cfg.store`` (the
    working store: resumable, never the committed one, so a fresh clone really computes), then
    publish the planned jobs into ``cfg.publish_store`` (the results store behind ``results/``),
    write the suites' outputs and regenerate the report from the published store."""
    jobs = plan(cfg)
    if not cfg.seeds:
        raise ValueError("seeds: empty, so no job would run. Fix: e.g. seeds=[0] or "
                         "'seeds=[0,1,2]'.")
    store = ResultStore(cfg.store)
    command = "python -m experiments.run " + shlex.join(_job_overrides())
    tracker = _mlflow(cfg)
    written: list[Path] = []
    todo = [(s, c, seed) for s, c in jobs for seed in cfg.seeds]
    bar = tqdm(total=len(todo), desc="jobs", disable=not cfg.progress)
    for suite, config in jobs:
        chash = config_hash(suite.name, config)
        pending = []
        for seed in cfg.seeds:
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
            for suite, config, seed in todo:
                store.publish(results, suite.name, config_hash(suite.name, config), seed)
    if cfg.write_outputs:
        for suite, config in jobs:
            _write_suite_outputs(cfg, results, suite, config)
    if cfg.report:
        from experiments.report import write_report

        write_report(results, Path(cfg.results_root) / "REPORT.md")
    return written


def _run_seeds(suite, config, seeds: list[int], progress: bool):
    """``(seed, rows)`` of each pending seed. A suite with ``run_batch`` runs them as one batch
    (its seeds ``vmap``-ed, one compilation); rows are still stored one file per seed."""
    if len(seeds) > 1 and hasattr(suite.module, "run_batch"):
        rows = suite.module.run_batch(config, seeds=seeds, progress=progress)
        for seed in seeds:
            yield seed, rows[rows["seed"] == seed].reset_index(drop=True)
        return
    for seed in seeds:
        yield seed, suite.module.run(config, seed=seed, progress=progress)


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
    if config == suite.config_class():
        return root / suite.name
    if config == suite.config_class.compact():
        return root / "compact" / suite.name
    return root / "sweeps" / suite.name / config_hash(suite.name, config)


def _write_suite_outputs(cfg: DictConfig, store: ResultStore, suite, config) -> None:
    rows = store.read(suite.name, config_hash(suite.name, config))
    if rows.empty:
        return
    rows = rows[rows["seed"].isin(list(cfg.seeds))]
    out_dir = suite_output_dir(Path(cfg.results_root), suite, config)
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
