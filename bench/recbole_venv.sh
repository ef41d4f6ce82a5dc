#!/usr/bin/env bash
# Create (or complete) RecBole 1.2.1's own virtual environment at var/recbole-venv.
#
#   bash bench/recbole_venv.sh
#
# Idempotent: an environment that already imports everything the runner needs is left
# as it is. torch 2.13.0 comes first (the CPU build on local disk; any other torch spec
# would download GBs). recbole is installed without its declared dependencies because
# `ray` (<=2.6.3) is only imported by recbole.quick_start, which the runner does not use;
# the packages recbole imports on the runner's path are listed here instead.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RECBOLE_VENV:-$ROOT/var/recbole-venv}"
PYTHON="${PYTHON:-python3.11}"
CHECK='import recbole, torch, numpy, scipy, pandas, yaml, tqdm, colorlog, colorama, sklearn, texttable, thop, psutil, tensorboard; from recbole.config import Config; assert recbole.__version__ == "1.2.1"; assert numpy.__version__ < "2"'

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "$CHECK" 2>/dev/null; then
    echo "recbole venv ready: $VENV"
    exit 0
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --quiet)
"${PIP[@]}" "torch==2.13.0"
"${PIP[@]}" "numpy<2" "pandas<2.3" "scipy==1.10.1" "setuptools<81" \
    "tqdm>=4.48.2" "colorlog==4.7.2" "colorama==0.4.4" "scikit-learn<1.6" "pyyaml>=5.1.0" \
    "tensorboard>=2.5.0" "texttable>=0.9.0" "thop>=0.1.1.post2207130030" "psutil>=5.9.0" \
    "tabulate>=0.8.10"
"${PIP[@]}" --no-deps "recbole==1.2.1"
"$VENV/bin/python" -c "$CHECK"
"$VENV/bin/python" -c 'import torch, numpy, recbole; print("recbole venv ready:", recbole.__version__, "torch", torch.__version__, "numpy", numpy.__version__)'
