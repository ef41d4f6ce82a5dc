"""Content-based item kNN: TF-IDF over each item's title, categories, description, attributes.

Item vectors are TF-IDF rows (scikit-learn's `TfidfVectorizer`, sublinear tf by default)
whose fields are weighted, then L2-normalised; for every target item only its `k` most
cosine-similar items are kept. A user scores items by the weighted mean of the neighbour
columns of their train items, so items without any interaction (cold items) are scored too.
"""

import re
from collections.abc import Mapping, Sequence
from functools import cache

import numpy as np
import scipy.sparse as sp

from ml.algorithms.base import HyperValue, Recommender, csr_from_arrays, csr_to_arrays
from ml.algorithms.fold_in import History
from ml.algorithms.itemknn import item_similarity
from ml.data.dataset import InteractionData, ItemRecord, interaction_matrix

SECONDS_PER_DAY = 86_400.0
WORD_PATTERN = re.compile(r"[^\W_]{2,}")
NO_CONTENT_MESSAGE = (
    "ContentKNN needs `data` with item content (titles, categories, descriptions or "
    "attributes); this dataset has none"
)
# Token prefixes: the field weights scale the TF-IDF columns of each kind of token.
WORD, CATEGORY, ATTRIBUTE = "word", "category", "attribute"


class ContentKNN(Recommender):
    """Scores items by TF-IDF cosine similarity to the items a user consumed."""

    name = "content"
    needs_data = True

    def __init__(
        self,
        k: int = 25,
        text_weight: float = 1.0,
        category_weight: float = 1.0,
        attribute_weight: float = 1.0,
        sublinear_tf: bool = True,
        half_life_days: float | None = None,
        block_size: int = 512,
    ) -> None:
        super().__init__()
        self.k = k
        self.text_weight = text_weight
        self.category_weight = category_weight
        self.attribute_weight = attribute_weight
        self.sublinear_tf = sublinear_tf
        self.half_life_days = half_life_days
        self.block_size = block_size
        self.similarity = sp.csr_matrix((0, 0), dtype=np.float32)
        self.user_items = sp.csr_matrix((0, 0), dtype=np.float32)

    @property
    def hyperparameters(self) -> dict[str, HyperValue]:
        """Neighbourhood size, field weights, tf scaling, recency half-life and block size."""
        return {
            "k": self.k,
            "text_weight": self.text_weight,
            "category_weight": self.category_weight,
            "attribute_weight": self.attribute_weight,
            "sublinear_tf": self.sublinear_tf,
            "half_life_days": self.half_life_days,
            "block_size": self.block_size,
        }

    def _fit(
        self, train: sp.csr_matrix, *, data: InteractionData | None, valid: sp.csr_matrix | None
    ) -> None:
        if data is None or data.item_content is None:
            raise ValueError(NO_CONTENT_MESSAGE)
        features = self.item_features(_aligned(data.item_content, self.n_items))
        # `item_similarity` takes users x items; here the "users" are the TF-IDF terms.
        self.similarity = item_similarity(features.T.tocsr(), self.k, 0.0, self.block_size)
        if self.half_life_days is not None:
            train = _recency_weighted(train, data, self.half_life_days)
        self.user_items = _row_normalised(train)

    def item_features(self, content: Sequence[ItemRecord]) -> sp.csr_matrix:
        """Field-weighted, L2-normalised TF-IDF rows, one per item."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.preprocessing import normalize

        vectorizer = TfidfVectorizer(
            analyzer=item_tokens, sublinear_tf=self.sublinear_tf, norm=None, dtype=np.float32
        )
        try:
            tfidf = vectorizer.fit_transform(content)
        except ValueError:
            raise ValueError("the item content has no words, categories or attributes") from None
        weights = {
            WORD: self.text_weight,
            CATEGORY: self.category_weight,
            ATTRIBUTE: self.attribute_weight,
        }
        column_weights = np.zeros(tfidf.shape[1], dtype=np.float32)
        for token, column in vectorizer.vocabulary_.items():
            column_weights[column] = weights[token.split(":", 1)[0]]
        weighted = sp.csr_matrix(tfidf @ sp.diags(column_weights))
        return sp.csr_matrix(normalize(weighted, norm="l2"), dtype=np.float32)

    def score(self, users: np.ndarray) -> np.ndarray:
        """Weighted mean, over each user's train items, of their neighbour similarities."""
        return np.asarray((self.user_items[users] @ self.similarity).toarray())

    def _score_history(self, history: History) -> np.ndarray:
        """Weighted mean of the history items' neighbour rows, as `score` for a train user.

        The caller's weights stand in for the recency decay of `half_life_days`.
        """
        row = _row_normalised(history.row(self.n_items))
        return np.asarray((row @ self.similarity).toarray()).ravel()

    def _state(self) -> dict[str, np.ndarray]:
        return {
            **csr_to_arrays("similarity", self.similarity),
            **csr_to_arrays("user_items", self.user_items),
        }

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.similarity = csr_from_arrays("similarity", arrays)
        self.user_items = csr_from_arrays("user_items", arrays)


def item_tokens(record: ItemRecord) -> list[str]:
    """Prefixed tokens of one item: title and description words, categories, attributes."""
    text = f"{record.title} {record.description}".lower()
    words = [f"{WORD}:{word}" for word in WORD_PATTERN.findall(text) if word not in _stop_words()]
    categories = [f"{CATEGORY}:{name.strip().lower()}" for name in record.categories if name]
    attributes = [
        f"{ATTRIBUTE}:{key.strip().lower()}={str(value).strip().lower()}"
        for key, value in record.attributes.items()
    ]
    return words + categories + attributes


@cache
def _stop_words() -> frozenset[str]:
    """scikit-learn's English stop words (imported lazily: loading a model needs no sklearn)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def _aligned(content: tuple[ItemRecord, ...], n_items: int) -> tuple[ItemRecord, ...]:
    """The item content, checked to have one record per train column."""
    if len(content) != n_items:
        raise ValueError(f"item content covers {len(content)} items, the train matrix {n_items}")
    return content


def _recency_weighted(
    train: sp.csr_matrix, data: InteractionData, half_life_days: float
) -> sp.csr_matrix:
    """Train matrix with each entry 0.5 ** (age / half-life), age from the user's newest one."""
    in_train = np.asarray(train[data.users, data.items]).ravel() > 0
    users, items, times = data.users[in_train], data.items[in_train], data.timestamps[in_train]
    newest = np.full(train.shape[0], -np.inf)
    np.maximum.at(newest, users, times)
    decay = np.power(0.5, (newest[users] - times) / SECONDS_PER_DAY / half_life_days)
    return interaction_matrix(users, items, decay.astype(np.float32), train.shape)


def _row_normalised(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Rows scaled to sum to one (empty rows stay empty)."""
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    scale = np.divide(1.0, sums, out=np.zeros_like(sums, dtype=np.float64), where=sums > 0)
    return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ matrix, dtype=np.float32)
