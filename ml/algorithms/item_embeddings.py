"""Item embeddings for the quantizer: TF-IDF content reduced by SVD, fused with collaborative
factors (truncated SVD of the item-user train matrix).

Every fitted part is a plain array, so a model loaded from disk embeds a brand-new item
from its content alone: words and categories through the stored vocabulary, IDF and SVD
components; its collaborative part, which it cannot have yet, predicted from its content
by a ridge regression learnt on the items that have interactions.
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ml.algorithms.content import item_tokens
from ml.data.dataset import ItemRecord

EMBEDDING_PREFIX = "embedder_"


@dataclass(frozen=True)
class ItemEmbedder:
    """The fitted content-to-embedding map (vocabulary, IDF, SVD, ridge, scaling)."""

    vocabulary: np.ndarray
    idf: np.ndarray
    components: np.ndarray
    ridge: np.ndarray
    collab_weight: float
    mean: np.ndarray
    scale: float

    @property
    def dimension(self) -> int:
        """Width of an embedding: content components plus collaborative factors."""
        return int(self.components.shape[0] + self.ridge.shape[1])

    def content(self, records: Sequence[ItemRecord]) -> np.ndarray:
        """Unit-length SVD-reduced TF-IDF rows of the records (zero rows for no known word)."""
        index = {str(token): column for column, token in enumerate(self.vocabulary)}
        tfidf = _tfidf(records, index, self.idf)
        return _unit_rows(np.asarray(tfidf @ self.components.T, dtype=np.float64))

    def embed(self, records: Sequence[ItemRecord], collab: np.ndarray | None = None) -> np.ndarray:
        """Standardised fused embeddings; without `collab` its part is predicted from content."""
        content = self.content(records)
        factors = content @ self.ridge if collab is None else collab
        fused = np.hstack([content, self.collab_weight * factors])
        return ((fused - self.mean) / self.scale).astype(np.float32)

    def unrepresented(self, records: Sequence[ItemRecord]) -> np.ndarray:
        """Per record, the squared length (in embedding units) of the content it cannot embed.

        That is the share of the record's squared TF-IDF mass in tokens outside the vocabulary
        (each weighted by the largest known IDF, that of the rarest known token; a record with
        no token at all counts as wholly unknown), over `scale` squared: a unit content row
        of which that share is dropped before embedding.
        """
        index = {str(token): column for column, token in enumerate(self.vocabulary)}
        unknown_idf = float(self.idf.max())
        shares = np.ones(len(records), dtype=np.float64)
        for row, record in enumerate(records):
            total = unknown = 0.0
            for token, count in Counter(item_tokens(record)).items():
                column = index.get(token)
                idf = unknown_idf if column is None else float(self.idf[column])
                mass = ((1.0 + np.log(count)) * idf) ** 2
                total += mass
                unknown += mass if column is None else 0.0
            if total > 0:
                shares[row] = unknown / total
        return shares / self.scale**2

    def state(self) -> dict[str, np.ndarray]:
        """Arrays for `np.savez` (prefixed), restored by `embedder_from_state`."""
        arrays = {
            "vocabulary": self.vocabulary.astype(str),
            "idf": self.idf,
            "components": self.components,
            "ridge": self.ridge,
            "collab_weight": np.asarray(self.collab_weight),
            "mean": self.mean,
            "scale": np.asarray(self.scale),
        }
        return {EMBEDDING_PREFIX + name: value for name, value in arrays.items()}


def embedder_from_state(arrays: Mapping[str, np.ndarray]) -> ItemEmbedder:
    """The embedder saved by `ItemEmbedder.state`."""
    get = {name.removeprefix(EMBEDDING_PREFIX): arrays[name] for name in arrays}
    return ItemEmbedder(
        vocabulary=get["vocabulary"],
        idf=get["idf"],
        components=get["components"],
        ridge=get["ridge"],
        collab_weight=float(get["collab_weight"]),
        mean=get["mean"],
        scale=float(get["scale"]),
    )


def fit_item_embeddings(
    content: Sequence[ItemRecord],
    train: sp.csr_matrix,
    *,
    content_dim: int,
    collab_dim: int,
    collab_weight: float,
    ridge: float,
    seed: int,
) -> tuple[ItemEmbedder, np.ndarray, np.ndarray]:
    """Fit on the items with train interactions ("warm"); embed every catalog item.

    Returns the embedder, the embeddings (n_items, d) and the boolean mask of warm items.
    Cold items are embedded exactly as a new item would be: from their content alone.
    """
    warm = np.asarray(train.sum(axis=0)).ravel() > 0
    if warm.sum() < 2:
        raise ValueError("semantic IDs need at least two items with train interactions")
    warm_records = [content[int(item)] for item in np.flatnonzero(warm)]
    vocabulary, idf = _fit_vocabulary(warm_records)
    index = {token: column for column, token in enumerate(vocabulary)}
    warm_tfidf = _tfidf(warm_records, index, idf)
    components = _svd_components(warm_tfidf, content_dim, seed)
    warm_content = _unit_rows(np.asarray(warm_tfidf @ components.T, dtype=np.float64))
    factors = _collab_factors(train, warm, collab_dim, seed)
    ridge_map = _ridge(warm_content, factors, ridge)
    fused = np.hstack([warm_content, collab_weight * factors])
    mean = fused.mean(axis=0)
    scale = float((fused - mean).std()) or 1.0
    embedder = ItemEmbedder(
        np.asarray(vocabulary, dtype=str), idf, components, ridge_map, collab_weight, mean, scale
    )
    embeddings = embedder.embed(content)
    embeddings[warm] = embedder.embed(warm_records, factors)
    return embedder, embeddings, warm


def _fit_vocabulary(records: Sequence[ItemRecord]) -> tuple[list[str], np.ndarray]:
    """Sorted tokens of the records and their smoothed IDF, as scikit-learn computes it."""
    document_frequency: Counter[str] = Counter()
    for record in records:
        document_frequency.update(set(item_tokens(record)))
    if not document_frequency:
        raise ValueError("the item content has no words, categories or attributes")
    vocabulary = sorted(document_frequency)
    counts = np.array([document_frequency[token] for token in vocabulary], dtype=np.float64)
    return vocabulary, np.log((1 + len(records)) / (1 + counts)) + 1.0


def _tfidf(
    records: Sequence[ItemRecord], index: Mapping[str, int], idf: np.ndarray
) -> sp.csr_matrix:
    """Sparse rows of sublinear tf times IDF, each of unit length (unknown tokens dropped)."""
    rows, columns, values = [], [], []
    for row, record in enumerate(records):
        for token, count in Counter(item_tokens(record)).items():
            column = index.get(token)
            if column is not None:
                rows.append(row)
                columns.append(column)
                values.append((1.0 + np.log(count)) * idf[column])
    shape = (len(records), len(index))
    matrix = sp.csr_matrix((values, (rows, columns)), shape=shape, dtype=np.float64)
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(inverse) @ matrix)


def _svd_components(matrix: sp.csr_matrix, dim: int, seed: int) -> np.ndarray:
    """The top right singular vectors (at most `dim`, fewer for a small matrix)."""
    from sklearn.decomposition import TruncatedSVD

    size = min(dim, matrix.shape[1] - 1, matrix.shape[0] - 1)
    if size < 1:
        return np.eye(matrix.shape[1], dtype=np.float64)
    svd = TruncatedSVD(n_components=size, random_state=seed).fit(matrix)
    return np.asarray(svd.components_, dtype=np.float64)


def _collab_factors(train: sp.csr_matrix, warm: np.ndarray, dim: int, seed: int) -> np.ndarray:
    """SVD factors of the warm items' L2-normalised user columns, mean row length 1."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.preprocessing import normalize

    items = normalize(sp.csr_matrix(train.T)[np.flatnonzero(warm)].astype(np.float64))
    size = min(dim, items.shape[1] - 1, items.shape[0] - 1)
    if size < 1:
        return np.zeros((items.shape[0], 1), dtype=np.float64)
    factors = TruncatedSVD(n_components=size, random_state=seed).fit_transform(items)
    return factors / max(float(np.linalg.norm(factors, axis=1).mean()), 1e-12)


def _ridge(inputs: np.ndarray, targets: np.ndarray, alpha: float) -> np.ndarray:
    """Weights of the ridge regression from `inputs` to `targets` (no intercept)."""
    system = inputs.T @ inputs + alpha * np.eye(inputs.shape[1])
    return np.asarray(np.linalg.solve(system, inputs.T @ targets))


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; zero rows stay zero."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
