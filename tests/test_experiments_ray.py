"""The Ray launcher (hydra-ray-launcher) runs a sweep on a local Ray instance. Needs the optional
``ray`` extra (``pip install -e '.[ray]'``); slow (starts Ray)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="pip install -e '.[ray]'")
pytest.importorskip("ray", reason="pip install -e '.[ray]'")

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_ray_launcher_runs_a_2x2_sweep_on_local_ray(tmp_path):
    args = ["--multirun", "hydra/launcher=ray", "experiment=horizons",
            "experiment.params.n_train=[300],[400]", "experiment.params.n_eval=600",
            "report=false", "write_outputs=false", "progress=false", "seeds=[0],[1]",
            f"store={tmp_path}", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    proc = subprocess.run([sys.executable, "-m", "experiments.run", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Ray Launcher is launching 4 jobs" in proc.stdout + proc.stderr
    assert len(list(tmp_path.glob("horizons/*/seed=*.parquet"))) == 4
