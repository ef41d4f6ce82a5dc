"""The Dawid-Skene label model on synthetic votes with known accuracies (no database)."""

import numpy as np
import pytest

from scraper.matching.label_model import DawidSkeneLabelModel
from scraper.matching.labeling import ABSTAIN, MATCH, NON_MATCH, majority_vote


def synthetic_votes(
    accuracies: list[float],
    coverages: list[float],
    *,
    n: int = 4000,
    prior: float = 0.3,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Votes of independent functions: each votes with its coverage, right with its accuracy."""
    rng = np.random.default_rng(seed)
    truth = (rng.random(n) < prior).astype(np.int64)
    votes = np.full((n, len(accuracies)), ABSTAIN, dtype=np.int64)
    for j, (accuracy, coverage) in enumerate(zip(accuracies, coverages, strict=True)):
        voting = rng.random(n) < coverage
        right = rng.random(n) < accuracy
        votes[voting, j] = np.where(right[voting], truth[voting], 1 - truth[voting])
    return votes, truth


def test_em_recovers_known_accuracies_and_prior() -> None:
    accuracies = [0.95, 0.6, 0.65, 0.85, 0.75]
    votes, truth = synthetic_votes(accuracies, [0.7, 0.9, 0.9, 0.5, 0.6])

    model = DawidSkeneLabelModel().fit(votes)

    assert model.accuracies == pytest.approx(accuracies, abs=0.04)
    assert model.prior == pytest.approx(truth.mean(), abs=0.03)


def test_beats_majority_vote_when_noisy_functions_outnumber_a_good_one() -> None:
    # One accurate function and two noisy ones that, together, outvote it.
    votes, truth = synthetic_votes([0.95, 0.6, 0.6], [1.0, 1.0, 1.0], seed=1)

    model = DawidSkeneLabelModel().fit(votes)
    em_accuracy = ((model.predict_proba(votes) > 0.5) == truth).mean()
    mv_accuracy = ((majority_vote(votes) > 0.5) == truth).mean()

    assert mv_accuracy < 0.85
    assert em_accuracy > 0.93
    assert em_accuracy > mv_accuracy + 0.08


def test_one_sided_functions_are_informative_through_when_they_vote() -> None:
    # Function 0 only ever votes "match", function 1 only "non-match": with abstains
    # modelled as an outcome, each still moves the posterior the right way.
    rng = np.random.default_rng(2)
    truth = (rng.random(3000) < 0.4).astype(np.int64)
    votes = np.full((3000, 3), ABSTAIN, dtype=np.int64)
    votes[:, 0] = np.where((truth == 1) & (rng.random(3000) < 0.8), MATCH, ABSTAIN)
    votes[:, 1] = np.where((truth == 0) & (rng.random(3000) < 0.8), NON_MATCH, ABSTAIN)
    votes[:, 2] = np.where(rng.random(3000) < 0.75, truth, 1 - truth)

    model = DawidSkeneLabelModel().fit(votes)

    assert ((model.predict_proba(votes) > 0.5) == truth).mean() > 0.9


def test_gold_labels_are_clamped_and_fix_a_misled_start() -> None:
    # Two wrong-most-of-the-time functions mislead majority vote; gold labels on 10% of
    # the pairs let EM learn that they are anti-correlated with the truth.
    votes, truth = synthetic_votes([0.3, 0.3, 0.8], [1.0, 1.0, 1.0], seed=3)
    gold = np.full(len(truth), -1)
    gold[:400] = truth[:400]

    without = DawidSkeneLabelModel().fit(votes)
    with_gold = DawidSkeneLabelModel().fit(votes, gold)

    accuracy_without = ((without.predict_proba(votes) > 0.5) == truth).mean()
    accuracy_with = ((with_gold.predict_proba(votes) > 0.5) == truth).mean()
    assert accuracy_with > accuracy_without + 0.1
    assert with_gold.accuracies[0] == pytest.approx(0.3, abs=0.05)


@pytest.mark.parametrize(
    ("votes", "message"),
    [
        (np.array([1, 0, -1]), "2-d"),
        (np.array([[1, 2]]), "-1, 0 or 1"),
        (np.zeros((0, 3)), "zero pairs"),
    ],
)
def test_bad_votes_are_refused_with_a_clear_error(votes: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DawidSkeneLabelModel().fit(votes)


def test_predicting_before_fitting_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        DawidSkeneLabelModel().predict_proba(np.zeros((1, 2), dtype=np.int64))


def test_grouped_posteriors_share_one_match_among_competing_candidates() -> None:
    # Two candidates of one product both look like matches to a pair of functions; the
    # group constraint keeps their total at most one.
    votes = np.array([[MATCH, MATCH], [MATCH, MATCH], [NON_MATCH, NON_MATCH]] * 50)
    groups = np.repeat(np.arange(50), 3)

    model = DawidSkeneLabelModel().fit(votes, groups=groups)
    grouped = model.predict_proba(votes, groups)
    independent = model.predict_proba(votes)

    totals = np.bincount(groups, weights=grouped)
    assert (totals <= 1.0 + 1e-9).all()
    assert grouped[0] == pytest.approx(grouped[1])
    assert grouped[0] < independent[0]
