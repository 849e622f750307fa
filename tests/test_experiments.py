"""The experiment framework: typed configs fail early, multirun fans out with joblib, the store
resumes an interrupted sweep without losing or duplicating rows, the report renders, and plug-ins
from modules outside the package run through a suite."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException

from experiments.report import aggregate, write_report
from experiments.run import plan
from experiments.store import ResultStore, config_hash

REPO = Path(__file__).resolve().parents[1]
# the value head on one TARNet, not the default's five: these tests are about the runner
TINY = ["experiment=horizons", "experiment.params.n_train=[300]", "experiment.params.n_eval=600",
        "learner.value.tarnet.n_members=1", "report=false", "write_outputs=false",
        "progress=false"]


def _compose(overrides: list[str]):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def _run(args: list[str], **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "1"}
    return subprocess.Popen([sys.executable, "-m", "experiments.run", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def test_config_errors_are_clear_and_early():
    cfg = _compose(["experiment=horizons", "experiment.params.n_eval=1000"])
    (suite, config), = plan(cfg)
    assert suite.name == "horizons" and config.n_eval == 1000
    (_, compact), = plan(_compose(["experiment=horizons", "experiment.compact=true"]))
    assert compact == suite.config_class.compact()
    (_, mixed), = plan(_compose(["experiment=horizons", "experiment.compact=true",
                                 "experiment.params.n_eval=3000"]))
    assert mixed.n_eval == 3000 and mixed.n_train == suite.config_class.compact().n_train
    with pytest.raises(ConfigCompositionException, match="n_ofers"):
        _compose(["world.n_ofers=5"])
    with pytest.raises(ConfigCompositionException, match="n_trian"):
        _compose(["experiment=horizons", "experiment.params.n_trian=5"])
    with pytest.raises(ConfigCompositionException, match="n_eval=many") as err:
        _compose(["experiment=horizons", "experiment.params.n_eval=many"])
    assert "could not be converted to Integer" in str(err.value.__cause__)
    with pytest.raises(ValueError, match="experiment.params: the default experiment"):
        plan(_compose(["+experiment.params.n_eval=5"]))
    default_plan = plan(_compose([]))
    names = [s.name for s, _ in default_plan]
    assert names[0] == "main" and "horizons" in names and "byo" not in names


def test_store_writes_atomically_and_reads_back(tmp_path, monkeypatch):
    from experiments.suites.horizons import HorizonsSuiteConfig

    store = ResultStore(tmp_path)
    cfg = HorizonsSuiteConfig(n_train=(300,), n_eval=600)
    rows = pd.DataFrame({"metric": ["a", "b"], "value": [1.0, 2.0], "n": [300, 300]})
    path = store.write("horizons", cfg, 3, rows, command="cmd")
    assert store.is_complete("horizons", config_hash("horizons", cfg), 3)
    back = store.read("horizons")
    assert list(back["seed"]) == [3, 3] and list(back["value"]) == [1.0, 2.0]
    assert back["cfg.n_eval"].iloc[0] == 600

    def crash_mid_write(self, path, *a, **k):  # half a file, then the process "dies"
        Path(path).write_bytes(b"PAR1 partial")
        raise OSError("disk full")

    with monkeypatch.context() as m:
        m.setattr(pd.DataFrame, "to_parquet", crash_mid_write)
        with pytest.raises(OSError):
            store.write("horizons", cfg, 4, rows)
    assert not store.is_complete("horizons", config_hash("horizons", cfg), 4)
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.json", "seed=3.parquet"]
    with pytest.raises(ValueError, match="rows: suite"):
        store.write("horizons", cfg, 5, pd.DataFrame({"x": [1]}))
    # a suite's own replicate seeds survive next to the job seed
    inner = rows.assign(seed=[0, 1])
    store.write("horizons", cfg, 6, inner)
    six = store.read("horizons").query("seed == 6")
    assert list(six["replicate_seed"]) == [0, 1]
    store.write("horizons", cfg, 7, rows.assign(seed=7))  # equal to the job seed: one column
    assert store.read("horizons").query("seed == 7")["replicate_seed"].isna().all()


def test_report_renders_tables_figures_and_commands(tmp_path):
    from experiments.suites.horizons import HorizonsSuiteConfig

    store = ResultStore(tmp_path / "store")
    cfg = HorizonsSuiteConfig(n_train=(300,), n_eval=600)
    rng = np.random.default_rng(0)
    for seed in range(4):
        rows = pd.DataFrame([dict(n=n, label=lab, metric=m, value=rng.normal())
                             for n in (300, 600) for lab in ("learning", "accounting")
                             for m in ("regret_accounting", "pehe_vs_accounting_uplift")])
        store.write("horizons", cfg, seed, rows, command="python -m experiments.run x=1")
    agg = aggregate(store.read())
    assert (agg["seeds"] == 4).all() and len(agg) == 8
    assert (agg["ci_low"] < agg["mean"]).all() and (agg["mean"] < agg["ci_high"]).all()
    report = write_report(store, tmp_path / "REPORT.md").read_text()
    assert "## horizons" in report and "python -m experiments.run x=1" in report
    assert "| metric |" in report and "![horizons](figures/" in report
    assert list((tmp_path / "figures").glob("*/horizons.png"))


@pytest.mark.slow  # the killed-sweep resume test runs the store protocol by default
def test_multirun_2x2_with_joblib_gives_four_complete_jobs(tmp_path):
    proc = _run(["--multirun", *TINY, "experiment.params.n_train=[300],[400]", "seeds=[0],[1]",
                 f"store={tmp_path}", "hydra.launcher.n_jobs=2",
                 f"hydra.sweep.dir={tmp_path / 'sweep'}"])
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert "Joblib" in out
    files = sorted(tmp_path.glob("horizons/*/seed=*.parquet"))
    assert len(files) == 4
    assert len({f.parent.name for f in files}) == 2


def test_killed_sweep_resumes_without_losing_or_duplicating_rows(tmp_path):
    seeds = "seeds=[0,1,2,3,4,5,6,7]"
    interrupted, clean = tmp_path / "interrupted", tmp_path / "clean"
    proc = _run([*TINY, seeds, f"store={interrupted}"], start_new_session=True)
    deadline = time.time() + 240
    while len(list(interrupted.glob("horizons/*/seed=*.parquet"))) < 2:
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(interrupted.glob("horizons/*/seed=*.parquet")))
    assert 2 <= done_before < 8, "the kill must land mid-sweep"
    resumed = _run([*TINY, seeds, f"store={interrupted}"])
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert out.count("[skip]") == done_before
    from experiments.run import execute

    execute(_compose([*TINY, seeds, f"store={clean}"]))  # the uninterrupted reference, in-process
    key = ["seed", "n", "label", "metric"]
    a = ResultStore(interrupted).read().sort_values(key).reset_index(drop=True)
    b = ResultStore(clean).read().sort_values(key).reset_index(drop=True)
    assert len(a) == len(b) == 8 * 8
    assert not a.duplicated(key).any()
    pd.testing.assert_frame_equal(a, b)


def test_plugins_from_a_module_outside_the_package_run_through_a_suite(tmp_path, monkeypatch):
    (tmp_path / "my_plugins.py").write_text(textwrap.dedent('''
        import numpy as np
        from estimators.base import Ridge
        from estimators.uplift import TLearner

        class ShrunkTLearner:
            """A user's learner: a ridge T-learner whose uplift is shrunk towards zero."""
            def __init__(self, shrink=0.5, alpha=1.0):
                self.shrink, self.inner = shrink, TLearner(base=Ridge(alpha=alpha))
            def fit(self, x, action, reward, action_prob=None, n_actions=None):
                self.inner.fit(x, action, reward, action_prob=action_prob, n_actions=n_actions)
                return self
            def predict_tau(self, x):
                return self.shrink * np.asarray(self.inner.predict_tau(x))

        class NumpyIPS:
            """OBP-style estimator object (estimate_policy_value), IPS in NumPy."""
            def estimate_policy_value(self, reward, action, pscore, action_dist, **kw):
                pi = action_dist[np.arange(len(action)), action, 0]
                return float(np.mean(reward * pi / pscore))
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    from experiments.suites import byo

    cfg = byo.ByoSuiteConfig(learner={"_target_": "my_plugins.ShrunkTLearner", "shrink": 0.5},
                             ope={"_target_": "my_plugins.NumpyIPS"}, n_train=2_000,
                             n_eval=2_000, n_replicates=3,
                             ope_loggings=("uniform", "warm_start"))
    raw = byo.run(cfg, seed=0, progress=False)
    df = raw[raw["logging"].isin(["", "uniform"])].set_index(["learner", "metric"])
    # halving both heads halves the PEHE's signal part: the plug-in differs from the reference
    assert df.loc[("plugin", "pehe_value"), "value"] != df.loc[("reference",
                                                                "pehe_value"), "value"]
    # paired rows are the per-seed differences; the fair comparison is at equal true spend
    for m in byo.PAIRED:
        diff = df.loc[("plugin_minus_reference", m), "value"]
        want = df.loc[("plugin", m), "value"] - df.loc[("reference", m), "value"]
        assert diff == pytest.approx(want, abs=1e-12)
    for who in ("plugin", "reference"):
        assert df.loc[(who, "cost_at_budget"), "value"] <= 1.001 * cfg.policy.budget_per_user
    ope = raw[raw["learner"] == "plugin"].set_index(["estimator", "logging", "metric"])["value"]
    # through the OBP adapter, the plug-in's NumPy IPS equals allocbench's IPS on the same arrays
    assert ope[("plugin", "uniform", "ope_estimate")] == pytest.approx(
        ope[("reference_ips", "uniform", "ope_estimate")], rel=1e-10)
    for kind in cfg.ope_loggings:  # bias and RMSE over replicates; IPS equal again
        assert ope[("plugin", kind, "rmse")] == pytest.approx(
            ope[("reference_ips", kind, "rmse")], rel=1e-10)
        assert np.isnan(ope[("plugin", kind, "coverage")])  # the adapter reports no CI
        assert 0.0 <= ope[("reference_dr", kind, "coverage")] <= 1.0
    with pytest.raises(ValueError, match="learner: .*neither fit/predict_tau"):
        from experiments.plugins import as_learner
        as_learner(object())


@pytest.mark.slow  # `make slow` installs the tracking extra
def test_mlflow_tracking_logs_each_job(tmp_path):
    pytest.importorskip("mlflow", reason="optional: pip install -e '.[tracking]'")
    import mlflow

    from experiments.run import execute

    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    cfg = _compose([*TINY, "seeds=[0,1]", f"store={tmp_path / 'store'}", "mlflow.enabled=true",
                    f"mlflow.tracking_uri={uri}"])
    execute(cfg)
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["allocbench"])
    assert len(runs) == 2
    assert set(runs["params.seed"]) == {"0", "1"}
    assert "metrics.regret_accounting" in runs.columns


@pytest.mark.parametrize("override", [
    "world=k8", "world.n_binary=2", "world.n_continuous=3", "world.n_programs=1",
    "logging=holdout", "logging=warm_start", "logging.epsilon=0.2", "logging.temperature=1.0",
    "logging.prior_noise=0.5", "logging=holdout logging.offer=2", "logging.treat_prob=0.3",
    "learner.value.alpha=2.0", "learner.cost.alpha=3.0", "policy.budget_per_user=2.5",
    "ope.ci_level=0.9", "ope.estimators=[ips,snips]", "learner.value.learner=dr",
    "ope.lambda_=5.0",
])
def test_every_global_group_field_reaches_the_main_job(override):
    """A sweep over any group key must produce a different main-job config (and hash), under
    experiment=main and in the default experiment."""
    from experiments.main_benchmark import MainSuiteConfig

    for base in (["experiment=main"], []):
        (suite, config), *_ = plan(_compose([*base, *override.split()]))
        assert suite.name == "main"
        assert config != MainSuiteConfig(), override
        assert config_hash("main", config) != config_hash("main", MainSuiteConfig())


def test_learner_presets_spell_out_the_default_and_the_previous_default():
    """``learner=tarnet_value`` is the default heads written out (the same main-job config and
    hash as no override); ``learner=hurdle`` builds the previous default, the unweighted hurdle
    pair, and ``learner=hurdle_ipw`` that pair weighted by 1 / e_a(x). A preset changes only the
    fields it names (the rest come from the suite's own heads), so the presets are compared by
    the learners they build."""
    from estimators.heads import HURDLE_HEADS, HeadsConfig, make_heads
    from experiments.main_benchmark import MainSuiteConfig

    def built(preset):
        (_, config), = plan(_compose(["experiment=main", f"learner={preset}"]))
        heads = make_heads(config.learner)
        return heads.value, heads.cost

    (_, default), = plan(_compose(["experiment=main"]))
    (_, spelled), = plan(_compose(["experiment=main", "learner=tarnet_value"]))
    assert default.learner == spelled.learner == HeadsConfig()
    assert config_hash("main", spelled) == config_hash("main", MainSuiteConfig())
    pair = make_heads(HURDLE_HEADS)
    assert built("hurdle") == (pair.value, pair.cost)
    assert not pair.value.weight_by_propensity and not pair.cost.weight_by_propensity
    weighted = tuple(dataclasses.replace(h, weight_by_propensity=True) for h in (pair.value,
                                                                              pair.cost))
    assert built("hurdle_ipw") == weighted
    assert weighted[1] == make_heads(HeadsConfig()).cost


def test_group_settings_have_one_place_and_unused_groups_fail_at_plan():
    (_, config), = plan(_compose(["experiment=main", "policy.budget_per_user=2.0"]))
    assert config.policy.budget_per_user == 2.0
    # a shared config is set in one place only: its group (no experiment.params copy to conflict)
    with pytest.raises(ConfigCompositionException, match="budget_per_user"):
        _compose(["experiment=main", "experiment.params.budget_per_user=2.0"])
    with pytest.raises(ValueError, match="world.n_offers: suite 'hillstrom' does not use"):
        plan(_compose(["experiment=hillstrom", "world=k8"]))
    with pytest.raises(ValueError, match="learner"):
        plan(_compose(["experiment=main", "learner.value.learner=xgboost"]))
    with pytest.raises(ValueError, match="ope.estimators"):
        plan(_compose(["experiment=main", "ope.estimators=[ipw]"]))
    with pytest.raises(ValueError, match="offer"):
        plan(_compose(["experiment=main", "logging=holdout", "logging.offer=9"]))
    with pytest.raises(ValueError, match="LoggingConfig.kind"):
        plan(_compose(["experiment=main", "logging.kind=unifrom"]))
    from experiments.run import execute

    with pytest.raises(ValueError, match="seeds: empty"):
        execute(_compose([*TINY, "seeds=[]", "store=/nonexistent/never-written"]))
    with pytest.raises(ValueError, match=r"ByoSuiteConfig.learner._target_"):
        plan(_compose(["experiment=byo", "+experiment.params.learner={_target_: nosuch.Mod}"]))


def test_outputs_are_keyed_by_the_whole_job(tmp_path):
    """Config and seeds: the documented full-size job at its published seeds, the default
    benchmark's compact job at seed 0, and every other job (another config, or the same config
    at other seeds, e.g. one job per seed of a sweep) in a folder of its own."""
    from experiments.run import suite_output_dir
    from experiments.suites import load

    suite = load("horizons")
    full, compact = suite.config_class(), suite.config_class.compact()
    other = dataclasses.replace(compact, n_eval=777)
    documented = list(suite.result_seeds)
    assert suite_output_dir(tmp_path, suite, full, documented) == tmp_path / "horizons"
    assert suite_output_dir(tmp_path, suite, compact, [0]) == tmp_path / "compact" / "horizons"
    sweeps = tmp_path / "sweeps" / "horizons"
    assert suite_output_dir(tmp_path, suite, other, [0]) == (
        sweeps / f"{config_hash('horizons', other)}-seeds-0")
    one_seed_jobs = {suite_output_dir(tmp_path, suite, full, [s]) for s in documented}
    assert len(one_seed_jobs) == len(documented) and tmp_path / "horizons" not in one_seed_jobs
    many = suite_output_dir(tmp_path, suite, full, list(range(100)))
    assert many.name.startswith(f"{config_hash('horizons', full)}-seeds-0-99_n100_")


def test_runs_leave_results_byte_identical_unless_published(tmp_path):
    """Isolation by default: a sweep (two jobs, one seed each, sequential launcher) and a compact
    run write their tables, figures and report under output_root and never touch results_root;
    publish=true writes results_root (store, tables, report)."""
    from experiments.run import execute

    results, outputs = tmp_path / "results", tmp_path / "outputs"
    (results / "horizons").mkdir(parents=True)
    (results / "horizons" / "horizons.csv").write_text("committed\n")
    (results / "REPORT.md").write_text("# committed report\n")

    def snapshot() -> dict[str, bytes]:
        return {str(p.relative_to(results)): p.read_bytes()
                for p in sorted(results.rglob("*")) if p.is_file()}

    before = snapshot()
    base = [*TINY[:3], "progress=false", f"results_root={results}", f"output_root={outputs}",
            f"store={outputs / 'store'}"]
    for seed in (0, 1):  # what --multirun 'seeds=[0],[1]' launches, one job each
        execute(_compose([*base, f"seeds=[{seed}]"]))
    # the compact preset, shrunk to the same sizes (so the same job as seed 0's: rewritten)
    execute(_compose([*base, "experiment.compact=true", "seeds=[0]"]))
    assert snapshot() == before
    assert (outputs / "REPORT.md").is_file()
    assert len(list((outputs / "sweeps" / "horizons").iterdir())) == 2  # one folder per job
    execute(_compose([*base, "seeds=[0]", "publish=true"]))
    after = snapshot()
    assert after["REPORT.md"] != before["REPORT.md"]
    assert any(k.startswith("store/horizons/") for k in after)


def test_jobs_run_in_the_working_store_and_are_published(tmp_path):
    """A fresh working store computes every job even when the published store already holds
    them (a fresh clone must run, not replay); publishing copies the new rows over."""
    from experiments.run import execute

    work, published = tmp_path / "work", tmp_path / "results" / "store"
    args = ["experiment=horizons", "experiment.params.n_train=[300]",
            "experiment.params.n_eval=600", "progress=false", "report=false", "publish=true",
            f"results_root={tmp_path / 'results'}", f"store={work}", "seeds=[0,1]"]
    cfg = _compose(args)
    (_, config), = plan(cfg)
    chash = config_hash("horizons", config)
    stale = pd.DataFrame({"metric": ["stale"], "value": [0.0]})
    ResultStore(published).write("horizons", config, 0, stale)
    assert len(execute(cfg)) == 2  # both seeds computed despite the published seed 0
    rows = ResultStore(published).read("horizons", chash)
    assert sorted(rows["seed"].unique()) == [0, 1] and "stale" not in set(rows["metric"])
    pd.testing.assert_frame_equal(rows, ResultStore(work).read("horizons", chash))
    assert (tmp_path / "results" / "sweeps" / "horizons" / f"{chash}-seeds-0_1").is_dir()
    assert execute(cfg) == []  # resumed from the working store: nothing to do


def test_make_results_jobs_come_from_the_suites():
    """``make results`` publishes the default benchmark and, for every default suite and every
    suite marked ``published`` (selection, net_score), its documented seeds and variants;
    nothing else (byo needs a plug-in)."""
    from experiments.publish import jobs
    from experiments.suites import available, load

    planned = jobs()
    assert planned[0] == []
    named = {job[0] for job in planned[1:]}
    assert named == {f"experiment={n}" for n in available() if load(n).is_published}
    assert {"experiment=selection", "experiment=net_score"} <= named
    assert "experiment=byo" not in named
    assert ["experiment=main", "seeds=[0,1,2,3,4]"] in planned


def test_default_benchmark_skips_a_suite_whose_real_data_are_missing(monkeypatch, tmp_path,
                                                                     capsys):
    """A fresh machine without the Hillstrom CSV still runs the default benchmark (on the
    synthetic world); the skip is said, not silent."""
    monkeypatch.setenv("ALLOCBENCH_HILLSTROM", str(tmp_path / "missing.csv"))
    names = [s.name for s, _ in plan(_compose([]))]
    assert "hillstrom" not in names and "main" in names and "ope" in names
    assert "[skip] hillstrom: Hillstrom CSV not found" in capsys.readouterr().err
    csv = tmp_path / "hillstrom.csv"
    csv.write_text("placeholder")
    monkeypatch.setenv("ALLOCBENCH_HILLSTROM", str(csv))
    assert "hillstrom" in [s.name for s, _ in plan(_compose([]))]


def test_report_reads_in_order_and_renders_to_valid_html(tmp_path):
    """The report opens with a summary, orders suites as SUITE_ORDER, labels jobs (full size /
    compact / sweep with what it changes), gives reproduce commands with their seeds, adds bias
    and coverage where the rows store the truth, prints round-off zeros as 0, keeps timings
    apart, and its HTML page parses with balanced tags and every image present."""
    from html.parser import HTMLParser

    from experiments.main_benchmark import MainSuiteConfig
    from experiments.report import fmt_number
    from experiments.suites.horizons import HorizonsSuiteConfig

    store = ResultStore(tmp_path / "store")
    rng = np.random.default_rng(1)
    for seed in range(3):
        rows = pd.DataFrame([dict(n=n, label=lab, metric=m, value=rng.normal())
                             for n in (300,) for lab in ("learning", "accounting")
                             for m in ("regret_accounting", "pehe_vs_accounting_uplift")])
        store.write("horizons", HorizonsSuiteConfig.compact(), seed, rows,
                    command="python -m experiments.run experiment=horizons")
        truth = 1.0
        est = truth + rng.normal(scale=0.1)
        main = pd.DataFrame([
            dict(policy="oracle", metric="incremental_value", estimator="truth", value=truth,
                 stderr=0.0, ci_low=truth, ci_high=truth),
            dict(policy="oracle", metric="incremental_value", estimator="ips", value=est,
                 stderr=0.1, ci_low=est - 0.5, ci_high=est + 0.5),
            dict(policy="oracle", metric="fit_seconds", estimator="truth", value=3.0,
                 stderr=0.0, ci_low=3.0, ci_high=3.0)])
        store.write("main", dataclasses.replace(MainSuiteConfig(), n_train=500), seed, main,
                    command="python -m experiments.run experiment=main "
                            "experiment.params.n_train=500")
    path = write_report(store, tmp_path / "out" / "REPORT.md", source="results/store")
    md = path.read_text()
    assert md.index("## Summary") < md.index("## main") < md.index("## horizons")
    assert md.index("## horizons") < md.index("## Timings")
    assert "horizons: compact preset" in md and "sweep from full size: n_train=500" in md
    assert "'seeds=[0,1,2]'" in md and "experiment.compact=true" in md
    assert "| coverage |" in md.replace("| bias | rmse | coverage |", "| coverage |")
    timings = md[md.index("## Timings"):]
    assert "fit_seconds" in timings and "fit_seconds" not in md[:md.index("## Timings")]
    assert fmt_number(-1.388e-18) == "0" and fmt_number(float("nan")) == ""

    class Check(HTMLParser):
        void = frozenset({"meta", "img", "br", "hr", "link", "input"})

        def __init__(self):
            super().__init__()
            self.stack, self.images, self.errors = [], [], []

        def handle_starttag(self, tag, attrs):
            if tag == "img":
                self.images.append(dict(attrs)["src"])
            elif tag not in self.void:
                self.stack.append(tag)

        def handle_endtag(self, tag):
            if not self.stack or self.stack.pop() != tag:
                self.errors.append(tag)

    page = path.with_suffix(".html").read_text()
    check = Check()
    check.feed(page)
    assert page.startswith("<!DOCTYPE html>") and not check.errors and not check.stack
    assert check.images and all((path.parent / src).is_file() for src in check.images)


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.slow  # a joblib multirun: two worker processes importing JAX
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_killing_a_sweeps_parent_leaves_no_workers(tmp_path):
    """SIGKILL to the Hydra parent alone (not its process group): the loky workers notice they
    were re-parented (experiments.run.exit_with_parent) and exit within seconds."""
    proc = _run(["--multirun", *TINY, "seeds=[0],[1],[2],[3]", f"store={tmp_path}",
                 "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={tmp_path / 'sweep'}"])
    deadline = time.time() + 240
    while not list(tmp_path.glob("horizons/*/seed=*.parquet")):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.1)
    workers = _children(proc.pid)
    assert workers, "the sweep runs in worker processes"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 30
    while any(Path(f"/proc/{w}").exists() for w in workers) and time.time() < deadline:
        time.sleep(0.2)
    alive = [w for w in workers if Path(f"/proc/{w}").exists()
             and "Z" not in Path(f"/proc/{w}/stat").read_text().rsplit(")", 1)[1].split()[0]]
    assert not alive, f"workers {alive} outlived the killed sweep"


def test_a_launcher_without_its_plugin_names_the_extra():
    from experiments.run import check_launcher_extras

    with pytest.raises(ValueError, match=r"pip install -e '\.\[cluster\]'"):
        check_launcher_extras(["hydra/launcher=slurm"])
    check_launcher_extras(["hydra/launcher=local", "seeds=[0]"])  # installed: nothing raised


def test_reproduce_commands_leave_out_runtime_options():
    """Where a run writes and what it prints do not define the job: a job run from a script with
    store=/progress= overrides records the same command as make results' job."""
    from experiments.run import _reproducing

    assert _reproducing(["experiment=learners", "world=nie_wager_a", "store=outputs/store",
                         "write_outputs=false", "report=false", "progress=false",
                         "+publish=true", "seeds=[0,1]"]) == [
        "experiment=learners", "world=nie_wager_a", "seeds=[0,1]"]
