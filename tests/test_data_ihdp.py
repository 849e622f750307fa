"""The IHDP adapter loads every vendored replication (checksum verified), keeps tau = mu1 - mu0,
validates as LoggedData, and names a bad replication or a corrupted file."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import simulators.hillstrom as hs
from estimators.metrics import pehe
from simulators.data import LoggedData
from simulators.ihdp import IHDP, ihdp_logged_data, load_ihdp

DATASETS = Path(hs.__file__).resolve().parent / "datasets"
REPLICATIONS = range(1, 11)


@pytest.mark.parametrize("r", REPLICATIONS)
def test_every_replication_loads_with_the_expected_shapes(r):
    d = load_ihdp(r)
    assert isinstance(d, IHDP)
    assert d.x.shape == (747, 25) and d.x.dtype == np.float64
    assert d.treatment.shape == (747,) and np.issubdtype(d.treatment.dtype, np.integer)
    assert set(np.unique(d.treatment)) == {0, 1}
    for a in (d.y_factual, d.y_cfactual, d.mu0, d.mu1, d.tau):
        assert a.shape == (747,) and a.dtype == np.float64 and np.all(np.isfinite(a))
    np.testing.assert_array_equal(d.tau, d.mu1 - d.mu0)
    assert int(d.treatment.sum()) == 139  # the same covariates and treated group in every rep


def test_vendored_files_match_the_recorded_checksums():
    recorded = json.loads((DATASETS / "checksums.json").read_text())["sha256"]
    for r in REPLICATIONS:
        gz = DATASETS / "ihdp" / f"ihdp_npci_{r}.csv.gz"
        assert gz.read_bytes()[4:8] == b"\0\0\0\0"  # mtime 0: deterministic gzip
        sha = hashlib.sha256(gzip.decompress(gz.read_bytes())).hexdigest()
        assert sha == recorded[f"ihdp/ihdp_npci_{r}.csv"]


def test_replications_share_covariates_but_not_outcomes():
    a, b = load_ihdp(1), load_ihdp(2)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.treatment, b.treatment)
    assert not np.allclose(a.mu1, b.mu1)


def test_logged_data_adapter_validates_with_truth():
    d = load_ihdp(1)
    log = ihdp_logged_data(1)
    assert isinstance(log, LoggedData) and log.n == 747 and log.n_actions == 2
    np.testing.assert_array_equal(log.action, d.treatment)
    np.testing.assert_array_equal(log.value, d.y_factual)
    np.testing.assert_allclose(log.truth.tau_value[:, 1], d.tau)
    np.testing.assert_allclose(log.truth.tau_value_accounting[:, 1], d.tau)
    assert np.all(log.truth.mu_cost == 0) and np.all(log.cost == 0)
    share = d.treatment.mean()
    np.testing.assert_allclose(log.action_prob, np.tile([1 - share, share], (747, 1)))
    # PEHE against the truth: a constant ATE prediction scores the spread of the true effect
    ate = np.column_stack([np.zeros(747), np.full(747, d.tau.mean())])
    assert pehe(ate, log.truth.tau_value, log.eligible) == pytest.approx(d.tau.std())
    assert pehe(log.truth.tau_value, log.truth.tau_value) == 0.0
    log.subset(np.arange(10))  # the record re-validates


def test_logged_data_indices_restrict_rows():
    idx = np.arange(0, 747, 3)
    log = ihdp_logged_data(4, indices=idx)
    d = load_ihdp(4)
    assert log.n == idx.size
    np.testing.assert_array_equal(log.x, d.x[idx])
    share = d.treatment[idx].mean()
    np.testing.assert_allclose(log.pscore, np.where(d.treatment[idx] == 1, share, 1 - share))
    mask = np.zeros(747, bool)
    mask[:100] = True
    assert ihdp_logged_data(4, indices=mask).n == 100
    with pytest.raises(ValueError, match="indices"):
        ihdp_logged_data(4, indices=[747])
    with pytest.raises(ValueError, match="indices"):
        ihdp_logged_data(4, indices=np.zeros(3, bool))
    with pytest.raises(ValueError, match="indices: selects no rows"):
        ihdp_logged_data(4, indices=np.zeros(0, int))


@pytest.mark.parametrize("bad", [0, 11, -1, 1.5, "1", True, None])
def test_bad_replication_is_named(bad):
    with pytest.raises(ValueError, match=r"replication: .*1\.\.10"):
        load_ihdp(bad)


def test_user_path_file_or_folder(tmp_path):
    src = DATASETS / "ihdp" / "ihdp_npci_5.csv.gz"
    plain = tmp_path / "ihdp_npci_5.csv"
    plain.write_bytes(gzip.decompress(src.read_bytes()))
    ref = load_ihdp(5)
    for p in (plain, tmp_path):
        np.testing.assert_array_equal(load_ihdp(5, path=p, verify=True).mu1, ref.mu1)
    with pytest.raises(ValueError, match="path: IHDP replication 6 not found"):
        load_ihdp(6, path=tmp_path)


def _fake_datasets(tmp_path, monkeypatch, content: bytes, r: int = 3) -> Path:
    """A copy of the vendored folder whose replication ``r`` file holds ``content``."""
    fake = tmp_path / "datasets"
    (fake / "ihdp").mkdir(parents=True)
    shutil.copy(DATASETS / "checksums.json", fake / "checksums.json")
    (fake / "ihdp" / f"ihdp_npci_{r}.csv.gz").write_bytes(content)
    monkeypatch.setattr("simulators.ihdp._DATASETS", fake)
    monkeypatch.setattr(hs, "_DATASETS", fake)
    return fake


def test_corrupted_vendored_file_fails_the_checksum(tmp_path, monkeypatch):
    data = bytearray(gzip.decompress((DATASETS / "ihdp" / "ihdp_npci_3.csv.gz").read_bytes()))
    data[100] = ord("7") if data[100] != ord("7") else ord("8")
    _fake_datasets(tmp_path, monkeypatch, gzip.compress(bytes(data), mtime=0))
    with pytest.raises(ValueError, match=r"path: .*ihdp_npci_3\.csv\.gz has sha256 .*Fix: "
                                         r"restore it from git"):
        load_ihdp(3)


def test_truncated_vendored_file_is_named(tmp_path, monkeypatch):
    raw = (DATASETS / "ihdp" / "ihdp_npci_3.csv.gz").read_bytes()
    _fake_datasets(tmp_path, monkeypatch, raw[: len(raw) - 100])
    with pytest.raises(ValueError, match=r"ihdp_npci_3\.csv\.gz is not valid gzip.*truncated"):
        load_ihdp(3)


def test_wrong_column_count_is_named(tmp_path):
    d = load_ihdp(2)
    wrong = tmp_path / "ihdp_npci_2.csv"
    np.savetxt(wrong, np.column_stack([d.treatment, d.y_factual, d.x]), delimiter=",")
    with pytest.raises(ValueError, match="has 27 columns, expected 30"):
        load_ihdp(2, path=wrong)
    with pytest.raises(ValueError, match="sha256"):
        load_ihdp(2, path=wrong, verify=True)
    nonbinary = tmp_path / "nonbinary.csv"
    np.savetxt(nonbinary, np.column_stack([d.treatment + 2, d.y_factual, d.y_cfactual, d.mu0,
                                           d.mu1, d.x]), delimiter=",")
    with pytest.raises(ValueError, match="treatment column"):
        load_ihdp(2, path=nonbinary)
