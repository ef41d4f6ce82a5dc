"""Context EASE: EASE whose item-item Gram matrix also learns from time, content and ratings.

Plain EASE (`ease.py`) solves for item-item weights from `XᵀX`. This variant fits the same
closed form on an augmented Gram matrix built from the training part only:

- confidence: each co-occurrence is weighted by both interactions' strength (rating or
  event weight, centred on the middle of its range), so a pair of 5-star ratings ties
  two items more than a 5 and a 1;
- time: interactions of one user close in time (an exponential kernel with scale
  `time_scale_seconds`, over the `TIME_NEIGHBOURS` nearest in that user's sequence) add
  `time_weight` times their kernel, since items consumed in one session are related
  more than items a year apart;
- content: every category, attribute value or title word acts as a pseudo-user holding the items
  that carry it (`content_weight`), which also gives items without interactions
  neighbours, so cold items can be recommended;
- dropout emphasis: `dropout` adds `p/(1-p)·diag(G)` to the L2 term (EDLAE);
- availability: an item first seen after a user's last activity (plus a slack) was not
  there to be chosen, so it is ranked last for that user.

Scores are `X_u · B` with the binary train row, as in EASE.
"""

import re
from collections.abc import Mapping
from typing import Literal

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from ml.algorithms.base import HyperValue, Recommender, csr_from_arrays, csr_to_arrays
from ml.algorithms.ease import history_scores
from ml.algorithms.fold_in import History
from ml.data.dataset import InteractionData

TIME_NEIGHBOURS = 64
UNAVAILABLE_SCORE = -1e9
SECONDS_PER_DAY = 86_400.0
MIN_CONFIDENCE = 0.05
TITLE_WORD = re.compile(r"[^\W_]+")
MIN_TITLE_WORD = 3
STOP_WORDS = ENGLISH_STOP_WORDS | {"la", "le", "les", "el", "der", "die", "das"}


class ContextEASE(Recommender):
    """EASE on a Gram matrix augmented with time, content and rating confidence."""

    name = "context_ease"
    needs_data = True

    def __init__(
        self,
        reg: float = 600.0,
        time_weight: float = 1.0,
        time_scale_seconds: float = 600.0,
        content_weight: float = 6.0,
        rating_weight: float = 0.25,
        dropout: float = 0.0,
        availability_slack_days: float | None = 1.0,
        dtype: Literal["float32", "float64"] = "float64",
    ) -> None:
        super().__init__()
        self.reg = reg
        self.time_weight = time_weight
        self.time_scale_seconds = time_scale_seconds
        self.content_weight = content_weight
        self.rating_weight = rating_weight
        self.dropout = dropout
        self.availability_slack_days = availability_slack_days
        self.dtype = dtype
        self.weights = np.zeros((0, 0), dtype=np.float32)
        self.user_items = sp.csr_matrix((0, 0), dtype=np.float32)
        self.item_first_seen = np.zeros(0, dtype=np.float64)
        self.user_last_seen = np.zeros(0, dtype=np.float64)

    @property
    def hyperparameters(self) -> dict[str, HyperValue]:
        """Regularisation, the weights of the three context terms and the availability slack."""
        return {
            "reg": self.reg,
            "time_weight": self.time_weight,
            "time_scale_seconds": self.time_scale_seconds,
            "content_weight": self.content_weight,
            "rating_weight": self.rating_weight,
            "dropout": self.dropout,
            "availability_slack_days": self.availability_slack_days,
            "dtype": self.dtype,
        }

    def _fit(
        self, train: sp.csr_matrix, *, data: InteractionData | None, valid: sp.csr_matrix | None
    ) -> None:
        if data is None:
            raise ValueError(
                "context_ease needs the InteractionData (timestamps, weights, item content) "
                "the train matrix was split from"
            )
        rows = train_rows(data, train)
        dtype = np.dtype(self.dtype)
        gram = self._gram(train, data, rows, dtype)
        # Dropout emphasis (Steck, 2020: EDLAE) penalises each item in proportion to its
        # own co-occurrence mass on top of the uniform L2 `reg`.
        emphasis = self.dropout / (1.0 - self.dropout) * np.diag(gram)
        gram[np.diag_indices_from(gram)] += self.reg + emphasis
        inverse = np.linalg.inv(gram)
        weights = inverse / -np.diag(inverse)
        weights[np.diag_indices_from(weights)] = 0.0
        self.weights = weights
        self.user_items = train
        self.item_first_seen, self.user_last_seen = first_and_last_seen(
            data, rows, self.n_users, self.n_items
        )

    def _gram(
        self, train: sp.csr_matrix, data: InteractionData, rows: np.ndarray, dtype: np.dtype
    ) -> np.ndarray:
        confident = confidence_matrix(data, rows, train.shape, self.rating_weight)
        gram = np.asarray((confident.T @ confident).toarray(), dtype=dtype)
        if self.time_weight:
            gram += self.time_weight * time_gram(data, rows, self.n_items, self.time_scale_seconds)
        if self.content_weight and data.item_content is not None:
            tokens = content_tokens(data)
            gram += self.content_weight * np.asarray((tokens.T @ tokens).toarray(), dtype=dtype)
        return gram

    def score(self, users: np.ndarray) -> np.ndarray:
        """Each user's train row times the weights; unavailable items pushed to the end."""
        scores = np.asarray(self.user_items[users] @ self.weights)
        if self.availability_slack_days is not None and len(self.user_last_seen):
            deadline = self.user_last_seen[users] + self.availability_slack_days * SECONDS_PER_DAY
            scores[self.item_first_seen[None, :] > deadline[:, None]] = UNAVAILABLE_SCORE
        return scores

    def _score_history(self, history: History) -> np.ndarray:
        """The history row times the weights, as `score` does with a binary train row.

        Time, content and rating confidence live in the weights, so they apply; weights of 1
        match a train user. Availability is left out: it needs the visitor's last train
        timestamp, so the caller filters items that were not yet out for them.
        """
        return history_scores(self.weights, history)

    def _state(self) -> dict[str, np.ndarray]:
        return {
            "weights": self.weights,
            "item_first_seen": self.item_first_seen,
            "user_last_seen": self.user_last_seen,
            **csr_to_arrays("user_items", self.user_items),
        }

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.weights = arrays["weights"]
        self.item_first_seen = arrays["item_first_seen"]
        self.user_last_seen = arrays["user_last_seen"]
        self.user_items = csr_from_arrays("user_items", arrays)


def train_rows(data: InteractionData, train: sp.csr_matrix) -> np.ndarray:
    """Indexes of `data`'s interactions that are stored in the train matrix."""
    if train.shape != (data.n_users, data.n_items):
        raise ValueError(
            f"train matrix {train.shape} does not match the data "
            f"({data.n_users} users, {data.n_items} items)"
        )
    coo = train.tocoo()
    train_keys = coo.row.astype(np.int64) * data.n_items + coo.col
    keys = data.users.astype(np.int64) * data.n_items + data.items
    return np.flatnonzero(np.isin(keys, train_keys))


def confidence_matrix(
    data: InteractionData, rows: np.ndarray, shape: tuple[int, int], rating_weight: float
) -> sp.csr_matrix:
    """Train interactions valued `1 + rating_weight · (w - mid)`, mid the middle of w's range."""
    weights = data.weights[rows].astype(np.float64)
    values = np.ones(len(rows), dtype=np.float64)
    if rating_weight and len(weights):
        middle = (weights.min() + weights.max()) / 2.0
        values = np.maximum(1.0 + rating_weight * (weights - middle), MIN_CONFIDENCE)
    return sp.csr_matrix((values, (data.users[rows], data.items[rows])), shape=shape)


def time_gram(
    data: InteractionData, rows: np.ndarray, n_items: int, scale_seconds: float
) -> np.ndarray:
    """Σ over each user's pairs of `exp(-|Δt| / scale)` (self-pairs count 1), item by item."""
    order = rows[np.lexsort((data.row_order[rows], data.timestamps[rows], data.users[rows]))]
    users, items = data.users[order], data.items[order].astype(np.int64)
    times = data.timestamps[order].astype(np.float64)
    counts = np.bincount(items * n_items + items, minlength=n_items * n_items).astype(np.float64)
    for offset in range(1, min(TIME_NEIGHBOURS, len(order) - 1) + 1):
        same_user = users[offset:] == users[:-offset]
        left, right = items[:-offset][same_user], items[offset:][same_user]
        kernel = np.exp(-(times[offset:] - times[:-offset])[same_user] / scale_seconds)
        counts += np.bincount(left * n_items + right, kernel, minlength=n_items * n_items)
        counts += np.bincount(right * n_items + left, kernel, minlength=n_items * n_items)
    return counts.reshape(n_items, n_items)


def content_tokens(data: InteractionData) -> sp.csr_matrix:
    """Binary (token, item) matrix of categories, `key=value` attributes and title words."""
    if data.item_content is None:
        return sp.csr_matrix((0, data.n_items))
    vocabulary: dict[str, int] = {}
    token_ids: list[int] = []
    item_ids: list[int] = []
    for item, record in enumerate(data.item_content):
        tokens = {f"category:{name.strip().lower()}" for name in record.categories if name.strip()}
        tokens |= {f"{key}={value}".lower() for key, value in record.attributes.items() if value}
        tokens |= {f"title:{word}" for word in title_words(record.title)}
        for token in tokens:
            token_ids.append(vocabulary.setdefault(token, len(vocabulary)))
            item_ids.append(item)
    values = np.ones(len(token_ids), dtype=np.float64)
    return sp.csr_matrix((values, (token_ids, item_ids)), shape=(len(vocabulary), data.n_items))


def title_words(title: str) -> set[str]:
    """Lower-case words of a title worth sharing (sequels, series, brands): no stop words."""
    words = TITLE_WORD.findall(title.lower())
    return {word for word in words if len(word) >= MIN_TITLE_WORD and word not in STOP_WORDS}


def first_and_last_seen(
    data: InteractionData, rows: np.ndarray, n_users: int, n_items: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each item's first train timestamp (-inf if none) and each user's last (+inf if none)."""
    first = np.full(n_items, np.inf)
    np.minimum.at(first, data.items[rows], data.timestamps[rows])
    first[np.isinf(first)] = -np.inf
    last = np.full(n_users, -np.inf)
    np.maximum.at(last, data.users[rows], data.timestamps[rows])
    last[np.isinf(last)] = np.inf
    return first, last
