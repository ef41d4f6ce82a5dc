"""Model artifacts on disk: a saved model plus its id vocabularies, written atomically.

A version's folder holds the model (`model.json` + `arrays.npz`, see
`ml.algorithms.base`) and `user_ids.npy` / `item_ids.npy`: the external ids of the
model's rows and columns, which serving needs to map visitors and items. Everything
is read with `allow_pickle=False`.
"""

import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.algorithms.base import Recommender
from ml.algorithms.registry import load

USER_IDS_FILE = "user_ids.npy"
ITEM_IDS_FILE = "item_ids.npy"
# Folders being written; a folder only leaves it, by an atomic rename, once complete.
INCOMING_DIR = ".incoming"


@dataclass(frozen=True, eq=False)
class LoadedArtifact:
    """A saved model with the external ids of its users (rows) and items (columns)."""

    model: Recommender
    user_ids: np.ndarray
    item_ids: np.ndarray


def artifact_write(
    *,
    root: Path,
    relative_path: str,
    model: Recommender,
    user_ids: Sequence[str],
    item_ids: Sequence[str],
) -> Path:
    """Save model and vocabularies under `root / relative_path`, all or nothing."""
    final = root / relative_path
    if final.exists():
        raise FileExistsError(f"artifact folder {final} already exists")
    incoming = root / INCOMING_DIR / uuid.uuid4().hex
    try:
        model.save(incoming)
        np.save(incoming / USER_IDS_FILE, np.asarray(user_ids, dtype=np.str_), allow_pickle=False)
        np.save(incoming / ITEM_IDS_FILE, np.asarray(item_ids, dtype=np.str_), allow_pickle=False)
        final.parent.mkdir(parents=True, exist_ok=True)
        incoming.rename(final)
    except BaseException:
        shutil.rmtree(incoming, ignore_errors=True)
        raise
    return final


def artifact_read(folder: Path) -> LoadedArtifact:
    """The model and vocabularies written by `artifact_write`."""
    model = load(folder)
    user_ids = np.load(folder / USER_IDS_FILE, allow_pickle=False)
    item_ids = np.load(folder / ITEM_IDS_FILE, allow_pickle=False)
    if len(user_ids) != model.n_users or len(item_ids) != model.n_items:
        raise ValueError(f"{folder}: vocabularies do not match the model's shape")
    return LoadedArtifact(model=model, user_ids=user_ids, item_ids=item_ids)


def artifact_delete(*, root: Path, relative_path: str) -> None:
    """Remove a version's folder (best effort: it may never have been written)."""
    shutil.rmtree(root / relative_path, ignore_errors=True)


def artifacts_discard_incoming(*, root: Path, older_than_seconds: float) -> int:
    """Delete half-written folders left by killed trainings; return how many."""
    incoming = root / INCOMING_DIR
    if not incoming.is_dir():
        return 0
    cutoff = time.time() - older_than_seconds
    stale = [folder for folder in incoming.iterdir() if folder.stat().st_mtime < cutoff]
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)
    return len(stale)
