"""Process-level settings for running models inside web workers."""

import sys

from threadpoolctl import threadpool_limits


def limit_threads_for_serving() -> None:
    """One thread for BLAS/OpenMP and torch: a web worker serves one request per thread."""
    threadpool_limits(limits=1)
    torch = sys.modules.get("torch")  # only if a model already imported it
    if torch is not None:
        torch.set_num_threads(1)
