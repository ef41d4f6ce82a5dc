"""Model registry and retraining: where artifacts live, what is trained, time limits."""

from pathlib import Path
from typing import Any

from webapp.settings.env import VAR_DIR, env

# Saved models (one folder per version); ModelVersion.artifact_path is relative to this.
ML_ARTIFACT_DIR: Path = Path(env.str("ML_ARTIFACT_DIR", default=str(VAR_DIR / "models")))

# role -> algorithm -> hyper-parameter grid; each role's best candidate on validation
# NDCG@10 replaces the active version only if it beats it. Kept small: it runs nightly.
# "similar" and "session" are scored with the same next-item protocol as "home" until
# role-specific evaluations exist. Override with ML_TRAINING_PLAN (JSON).
ML_TRAINING_PLAN_DEFAULT: dict[str, dict[str, dict[str, list[Any]]]] = {
    "home": {
        "pop": {"half_life_days": [None, 30.0]},
        "ease": {"reg": [100.0, 250.0, 500.0]},
        "context_ease": {"reg": [250.0, 600.0], "time_weight": [1.0], "dropout": [0.0, 0.3]},
        "als": {
            "factors": [64],
            "regularization": [5.0, 20.0],
            "alpha": [2.0],
            "iterations": [15],
        },
        # Order-aware: Top picks then follow the visitor's latest clicks (the best on
        # ML-100K's temporal split, 1.19x EASE's NDCG@10; bench/results_sequential.md).
        "sasrec": {"dim": [64], "layers": [2], "epochs": [20]},
    },
    "similar": {
        "itemknn": {"k": [50, 200], "shrink": [0.0, 50.0]},
        "hybrid": {"weight": [0.1, 0.3], "reg": [250.0]},
    },
    "session": {"itemknn": {"k": [50], "shrink": [10.0]}},
    # Semantic IDs (RQ-VAE over content + collaborative embeddings): written on the items
    # when promoted, so new items are matched with visitors' tastes from their content at
    # once ("New arrivals for you") and broken scrapes stand out by their anomaly score.
    "codes": {"semantic_ids": {"progress": [False]}},
}
ML_TRAINING_PLAN: dict[str, dict[str, dict[str, list[Any]]]] = env.json(
    "ML_TRAINING_PLAN", default=ML_TRAINING_PLAN_DEFAULT
)
# "temporal": per user, last interaction for test, the one before for validation;
# "random": RecBole's 8:1:1 random split per user.
ML_TRAINING_SPLIT: str = env.str("ML_TRAINING_SPLIT", default="temporal")
ML_TRAINING_SEED: int = env.int("ML_TRAINING_SEED", default=2020)
# Below this many users with a validation interaction the comparison is noise: refuse.
ML_TRAINING_MIN_VALID_USERS: int = env.int("ML_TRAINING_MIN_VALID_USERS", default=20)
ML_TRAINING_SOFT_TIME_LIMIT: int = env.int("ML_TRAINING_SOFT_TIME_LIMIT", default=3 * 60 * 60)
ML_TRAINING_TIME_LIMIT: int = ML_TRAINING_SOFT_TIME_LIMIT + 5 * 60
# Queued (by name) after every successful training: serving precomputes the answers of
# recently active visitors with the versions now active. Empty: nothing is queued.
ML_AFTER_TRAINING_TASK: str = env.str(
    "ML_AFTER_TRAINING_TASK", default="recommender.tasks.precompute_recommendations"
)
