#!/usr/bin/env bash
# A separate virtualenv in which Open Bandit Pipeline (obp 0.5.7) runs beside allocbench, for
# scripts/obp_side_by_side.py. obp is NOT a dependency of allocbench.
#
# obp 0.5.7 (the last release, an sdist only) declares python >=3.8,<3.11 with exact pins
# (torch 1.12, scikit-learn 1.1.3, numpy 1.23.5, pandas 1.5.2, scipy 1.9.3, ...). None of those pins
# install on Python 3.11 together with allocbench (numpy >= 1.26), yet obp's code runs unchanged
# under 3.11 on current releases: so obp is installed with --no-deps (and
# --ignore-requires-python, without which pip refuses the <3.11 marker) and its runtime imports
# are installed by hand. Its package import (`import obp`) pulls in obp.policy, which imports
# torch, so torch is required even though the OPE estimators used here are pure NumPy.
#
# The runtime imports of obp 0.5.7 (every top-level import in its source): numpy, scipy,
# scikit-learn, pandas, torch, tqdm, seaborn, matplotlib, pyyaml. The poetry pins pyieoe, pingouin
# and mypy-extensions are never imported and are not installed.
#
# Usage:  bash scripts/obp_env.sh [VENV_DIR]      (default .venv-obp, gitignored)
#         PYTHON=python3.11 bash scripts/obp_env.sh
# Then:   .venv-obp/bin/python scripts/obp_side_by_side.py
set -euo pipefail

cd "$(dirname "$0")/.."
VENV="${1:-.venv-obp}"
PYTHON="${PYTHON:-python3.11}"

"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
  || { echo "need Python 3.11 (set PYTHON=...)" >&2; exit 1; }

"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade pip

# allocbench itself (editable): jax, numpy, pandas, scipy, matplotlib, tqdm, ...
"${PIP[@]}" install -q -e .

# torch, CPU build: the PyTorch CPU index first, PyPI's torch otherwise.
if ! "${PIP[@]}" install -q "torch>=2.2,<3" --index-url https://download.pytorch.org/whl/cpu; then
  echo "PyTorch CPU index unreachable or incompatible: installing torch from PyPI" >&2
  "${PIP[@]}" install -q "torch>=2.2,<3"
fi

# obp's other runtime imports. Tested (2026-12, Python 3.11.7, about 3 minutes): obp 0.5.7 runs
# unchanged on numpy 2.4.6, scipy 1.17.1, scikit-learn 1.8.0, pandas 3.1.1, seaborn 0.13.2,
# torch 2.13.0+cpu (no numpy-2 or new-scikit-learn breakage in the estimators, the synthetic
# world or the package import). The lower bounds are untested floors of the same APIs.
"${PIP[@]}" install -q "scikit-learn>=1.3,<1.9" "seaborn>=0.12,<0.14" "pyyaml>=6,<7"

# obp itself, without its (Python < 3.11) pins.
"${PIP[@]}" install -q --no-deps --ignore-requires-python "obp==0.5.7"

"$VENV/bin/python" - <<'PY'
import importlib.metadata as md

import obp
from obp.ope import (DirectMethod, DoublyRobust, DoublyRobustWithShrinkage,  # noqa: F401
                     InverseProbabilityWeighting, SelfNormalizedDoublyRobust,
                     SelfNormalizedInverseProbabilityWeighting, SwitchDoublyRobust)

print("obp", obp.__version__, "imports;",
      ", ".join(f"{p} {md.version(p)}" for p in
                ("numpy", "scipy", "scikit-learn", "pandas", "torch", "seaborn", "jax")))
PY
