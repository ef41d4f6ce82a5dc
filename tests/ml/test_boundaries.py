"""The ML core stays framework-free: importing it loads neither Django nor torch."""

import subprocess
import sys

FRAMEWORK_FREE_MODULES = (
    "ml.data",
    "ml.algorithms.registry",
    "ml.evaluation.metrics",
    "ml.evaluation.protocol",
    "ml.evaluation.run_movielens",
)


def test_ml_core_imports_without_django_or_torch():
    code = (
        "import importlib, sys\n"
        f"for name in {FRAMEWORK_FREE_MODULES!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in ('django', 'torch') if m in sys.modules))\n"
    )

    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )

    assert completed.stdout.strip() == "[]"
