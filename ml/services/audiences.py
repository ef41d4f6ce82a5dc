"""Learned audiences: k-means over visitors' embeddings, stored as codes on their profiles."""

import logging
from collections import Counter
from dataclasses import dataclass

import numpy as np
from django.db import transaction
from sklearn.cluster import KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import normalize

from ml.data.dataset import InteractionData
from ml.models import Audience, ModelVersion

logger = logging.getLogger(__name__)

AUDIENCES = 8  # at most this many clusters per learned version (k by silhouette)
SILHOUETTE_SAMPLE = 5_000
EMBEDDING_DIM = 32
TOP_CATEGORIES = 5
UBIQUITOUS = 0.95  # share of the catalog's items above which a category is left out


@dataclass(frozen=True)
class AudienceCodes:
    codes: dict[int, str]  # visitor pk -> code
    audiences: list[Audience]


def audiences_learn(
    *, data: InteractionData, version: ModelVersion, clusters: int = AUDIENCES, seed: int = 0
) -> AudienceCodes:
    """Cluster the visitors of `data` by their (SVD) embeddings of the user-item matrix;
    the number of audiences (2..`clusters`) is the one with the best silhouette."""
    matrix = data.matrix().astype(np.float32)
    n_users, n_items = matrix.shape
    clusters = min(clusters, n_users)
    if clusters < 3 or n_items < 3:
        return AudienceCodes({}, [])
    dim = min(EMBEDDING_DIM, n_items - 1, n_users - 1)
    embedded = TruncatedSVD(n_components=dim, random_state=seed).fit_transform(matrix)
    labels = _best_clustering(normalize(embedded), max_clusters=clusters, seed=seed)
    clusters = int(labels.max()) + 1
    codes = {
        int(data.user_ids[user]): f"v{version.pk}-{label}"
        for user, label in enumerate(labels)
        if data.user_ids[user].isdigit()
    }
    audiences = [
        Audience(
            version=version,
            code=f"v{version.pk}-{label}",
            size=int((labels == label).sum()),
            top_categories=_top_categories(data, matrix, labels == label),
        )
        for label in range(clusters)
    ]
    return AudienceCodes(codes, audiences)


def _best_clustering(points: np.ndarray, *, max_clusters: int, seed: int) -> np.ndarray:
    """k-means labels for the k in 2..max_clusters with the best silhouette (on a sample)."""
    best: tuple[float, np.ndarray] | None = None
    for k in range(2, max_clusters + 1):
        labels = KMeans(n_clusters=k, random_state=seed, n_init=4).fit_predict(points)
        if len(set(labels.tolist())) < 2:
            continue
        score = silhouette_score(
            points, labels, sample_size=min(len(points), SILHOUETTE_SAMPLE), random_state=seed
        )
        if best is None or score > best[0]:
            best = (float(score), labels)
    return best[1] if best is not None else np.zeros(len(points), dtype=np.int64)


def _top_categories(
    data: InteractionData, matrix: object, members: np.ndarray
) -> list[list[object]]:
    if data.item_content is None:
        return []
    counts = np.asarray(matrix[members].sum(axis=0)).ravel()  # type: ignore[index]
    # A category (nearly) every item has, like a root "Movies", tells audiences nothing.
    carried = Counter(c for record in data.item_content for c in set(record.categories))
    common = {c for c, n in carried.items() if n >= UBIQUITOUS * len(data.item_content)}
    by_category: Counter[str] = Counter()
    for item, count in enumerate(counts):
        for category in data.item_content[item].categories:
            if category not in common:
                by_category[category] += int(count)
    total = sum(by_category.values()) or 1
    return [[name, round(n / total, 3)] for name, n in by_category.most_common(TOP_CATEGORIES)]


def audiences_store(*, learned: AudienceCodes, version: ModelVersion) -> int:
    """Replace the version's audiences and set every clustered visitor's code, atomically."""
    from webapp.segments.services import visitor_audiences_set

    with transaction.atomic():
        Audience.objects.filter(version=version).delete()
        Audience.objects.bulk_create(learned.audiences)
        stored = visitor_audiences_set(audiences=learned.codes, model_version=version)
    logger.info("audiences: %d visitors in %d audiences", stored, len(learned.audiences))
    return stored
