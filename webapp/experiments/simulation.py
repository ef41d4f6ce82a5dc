"""A/B test replayed on real data: trending vs the personalised model on the home page.

MovieLens-100K is split per user: `users` raters (all 943 by default, else a subset
picked by the seed) are *replayed*; the older half of each one's ratings (by time) is
their history, the newer half is held out. The personalised model (EASE) and the
trending list (popularity) are trained on everything except the held-out halves, so the
ratings that generate clicks are never seen in training. Each replayed rater becomes a
fresh anonymous visitor, arrives once at a random moment of the last `days` days, is
assigned by the site's decision code (`experiment_decide` on a running 50/50
experiment), is shown ten items of their variant (history items filtered out, as the
site does), and the exposure is recorded by `exposure_record` when the list is rendered
(then moved to the simulated arrival time, so the cumulative chart spans the simulated
days). Impressions and clicks go to the interaction log (a click: the shown item is
among the rater's held-out ratings of 4 or 5 stars), then `experiment_results` reads
the log like the admin page does.

`drop_share` simulates a delivery bug: that share (exactly floor(k * share) of the
first k) of the personalised variant's exposures is lost, so the sample ratio mismatch
check must fire, while the experiment is still configured 50/50. Everything is written
in one transaction; the experiment is stopped before it commits (the live site never
serves it), and a rerun first deletes the previous run's experiment, visitors, events.
"""

import time as clock
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from ml.algorithms.ease import EASE
from ml.data.dataset import InteractionData
from ml.data.movielens import from_movielens_wheel
from webapp.experiments.models import Experiment, ExperimentStatus, Exposure, Variant
from webapp.experiments.results import ExperimentResults, experiment_results
from webapp.experiments.selectors import experiment_decide, live_experiment_of
from webapp.experiments.services import experiment_set_status, exposure_record
from webapp.experiments.simulation_data import (
    movielens_item_pks,
    simulation_interactions_create,
)
from webapp.models import Interaction, Visitor

EXPERIMENT_KEY = "simulate-ab-home"
PLACEMENT = "home_top_picks"
CONTROL, TREATMENT = "trending", "personalized"
LIST_LENGTH = 10
POSITIVE_RATING = 4
EASE_REG = 250.0
# The relative lift the simulated test is designed to detect (its fixed horizon).
DESIGN_MDE = 0.25
# Never change it: the simulated visitors' keys derive from it (cleanup finds them).
VISITOR_NAMESPACE = uuid.UUID("0b5e3f0e-7a51-4c2e-9d8e-52b1a6d3c7f4")


@dataclass(frozen=True)
class SimulationConfig:
    """How many raters to replay, which share of exposures to lose, the seed."""

    users: int = 943  # every rater of ML-100K
    drop_share: float = 0.0
    seed: int = 0
    days: int = 14

    def __post_init__(self) -> None:
        if not 0.0 <= self.drop_share < 1.0:
            raise ValueError(f"drop_share must be in [0, 1), got {self.drop_share}")
        if self.users < 2:
            raise ValueError(f"users must be at least 2, got {self.users}")
        if self.days < 1:
            raise ValueError(f"days must be at least 1, got {self.days}")


@dataclass(frozen=True)
class Replay:
    """What the split gives the replay: per replayed rater, history and held-out positives."""

    data: InteractionData
    users: np.ndarray  # internal ids of the replayed raters
    history: dict[int, np.ndarray]
    positives: dict[int, frozenset[int]]
    train_rows: np.ndarray


@dataclass(frozen=True)
class SimulationReport:
    """The experiment's results plus what the replay did."""

    config: SimulationConfig
    results: ExperimentResults
    replayed: int
    dropped: int
    seconds: float

    def as_json(self) -> dict[str, Any]:
        """`variants`, `lift`, `p_value`, `prob_beat_control`, `srm_p_value`, `srm_warning`."""
        ctr = self.results.metric("ctr")
        exposures = {v.key: v.exposures for v in self.results.variants}
        lift = ctr.lifts[0] if ctr.lifts else None
        srm = self.results.srm
        return {
            "experiment": self.results.experiment_key,
            "metric": "ctr (clicks / impressions on the home top picks)",
            "config": {
                "users": self.config.users,
                "drop_share": self.config.drop_share,
                "seed": self.config.seed,
            },
            "replayed": self.replayed,
            "exposures_dropped": self.dropped,
            "variants": [
                {
                    "name": row.variant,
                    "exposures": exposures[row.variant],
                    "impressions": int(row.denominator),
                    "conversions": int(row.conversions),
                    "rate": row.mean,
                    "rate_ci": [row.ci.lower, row.ci.upper],
                }
                for row in ctr.variants
            ],
            "lift": None if lift is None else _lift_json(lift),
            "p_value": None if lift is None else lift.p_value,
            "p_value_adjusted": None if lift is None else lift.p_value_adjusted,
            "prob_beat_control": None if lift is None else lift.probability_to_beat_control,
            "verdict": None if lift is None else lift.verdict,
            "required_per_variant": None if ctr.plan is None else ctr.plan.per_variant,
            "srm_p_value": None if srm is None else srm.p_value,
            "srm_warning": self.results.srm_warning,
            "seconds": round(self.seconds, 2),
        }


def _lift_json(lift: Any) -> dict[str, Any]:
    return {
        "absolute": lift.absolute,
        "absolute_ci": [lift.absolute_ci.lower, lift.absolute_ci.upper],
        "relative": lift.relative,
        "relative_ci": None
        if lift.relative_ci is None
        else [lift.relative_ci.lower, lift.relative_ci.upper],
    }


def simulation_run(*, config: SimulationConfig, wheel: Path) -> SimulationReport:
    """Replay `config.users` MovieLens raters through a 50/50 experiment (see module)."""
    started = clock.perf_counter()
    data = from_movielens_wheel(wheel)
    if config.users > data.n_users:
        raise ValueError(f"users must be at most {data.n_users}, got {config.users}")
    replay = replay_split(data, users=config.users, seed=config.seed)
    lists = recommendation_lists(replay)
    with transaction.atomic():
        simulation_cleanup()
        item_pks = movielens_item_pks(wheel=wheel, item_ids=data.item_ids)
        experiment = _experiment_create(seed=config.seed)
        replayed, dropped = _replay(experiment, replay, lists, item_pks, config)
        experiment = experiment_set_status(experiment=experiment, status=ExperimentStatus.STOPPED)
        _analyze()
        results = experiment_results(experiment)
    return SimulationReport(config, results, replayed, dropped, clock.perf_counter() - started)


def replay_split(data: InteractionData, *, users: int, seed: int) -> Replay:
    """Pick `users` raters; hold out the newer half of each one's ratings (see module)."""
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.permutation(data.n_users)[:users])
    replayed = np.zeros(data.n_users, dtype=bool)
    replayed[chosen] = True
    order = np.lexsort((data.row_order, data.timestamps, data.users))
    counts = np.bincount(data.users, minlength=data.n_users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    position = np.empty(data.n_interactions, dtype=np.int64)
    position[order] = np.arange(data.n_interactions) - starts[data.users[order]]
    held = replayed[data.users] & (position >= counts[data.users] // 2)
    history, positives = {}, {}
    for user in chosen:
        rows = np.flatnonzero(data.users == user)
        kept = rows[~held[rows]]
        history[int(user)] = data.items[kept[np.argsort(position[kept])]]
        good = rows[held[rows] & (data.weights[rows] >= POSITIVE_RATING)]
        positives[int(user)] = frozenset(int(item) for item in data.items[good])
    return Replay(data, chosen, history, positives, np.flatnonzero(~held))


def recommendation_lists(replay: Replay) -> dict[str, dict[int, np.ndarray]]:
    """Per variant, the ten items each replayed rater is shown (history filtered out)."""
    train = replay.data.matrix(replay.train_rows)
    model = EASE(reg=EASE_REG).fit(train)
    popularity = np.bincount(train.indices, minlength=replay.data.n_items).astype(np.float64)
    lists: dict[str, dict[int, np.ndarray]] = {CONTROL: {}, TREATMENT: {}}
    for user in replay.users:
        seen = replay.history[int(user)]
        personal = model.score_history(seen).astype(np.float64)
        lists[CONTROL][int(user)] = _top(popularity.copy(), seen)
        lists[TREATMENT][int(user)] = _top(personal, seen)
    return lists


def _top(scores: np.ndarray, seen: np.ndarray) -> np.ndarray:
    scores[seen] = -np.inf
    top = np.argpartition(-scores, LIST_LENGTH)[:LIST_LENGTH]
    return top[np.argsort(-scores[top], kind="stable")]


def visitor_key(user_id: str) -> uuid.UUID:
    """The stable key of the simulated visitor replaying MovieLens rater `user_id`."""
    return uuid.uuid5(VISITOR_NAMESPACE, f"{EXPERIMENT_KEY}:{user_id}")


def simulation_cleanup() -> int:
    """Delete the previous run's experiment, exposures, visitors and their events."""
    keys = [visitor_key(str(user)) for user in range(1, 2000)]
    deleted, _ = Visitor.objects.filter(key__in=keys).delete()
    Exposure.objects.filter(experiment__key=EXPERIMENT_KEY).delete()
    Experiment.objects.filter(key=EXPERIMENT_KEY).delete()
    return deleted


def _experiment_create(*, seed: int) -> Experiment:
    experiment = Experiment.objects.create(
        key=EXPERIMENT_KEY,
        name="Simulation: trending vs personalized (home top picks)",
        hypothesis="The personalized model's picks get more clicks than trending items.",
        placement=PLACEMENT,
        seed=f"{EXPERIMENT_KEY}-{seed}",
        primary_metric="ctr",
        minimum_detectable_effect=DESIGN_MDE,
    )
    Variant.objects.bulk_create(
        [
            Variant(
                experiment=experiment,
                key=CONTROL,
                name="Trending",
                weight=50,
                is_control=True,
                position=0,
                config={"strategy": "trending", "model_version": None, "template": ""},
            ),
            Variant(
                experiment=experiment,
                key=TREATMENT,
                name="Personalized (EASE)",
                weight=50,
                position=1,
                config={"strategy": "model", "model_version": None, "template": ""},
            ),
        ]
    )
    return experiment_set_status(experiment=experiment, status=ExperimentStatus.RUNNING)


def _replay(
    experiment: Experiment,
    replay: Replay,
    lists: dict[str, dict[int, np.ndarray]],
    item_pks: np.ndarray,
    config: SimulationConfig,
) -> tuple[int, int]:
    """Decide, render, record exposures and events; (raters replayed, exposures lost)."""
    rng = np.random.default_rng(config.seed + 1)
    now = timezone.now()
    arrivals = sorted(
        now - timedelta(days=config.days) + timedelta(seconds=float(s))
        for s in rng.uniform(0, config.days * 86_400 - 3_600, size=len(replay.users))
    )
    visitors = Visitor.objects.bulk_create(
        [
            Visitor(key=visitor_key(replay.data.user_ids[user]), consent_given_at=now)
            for user in replay.users
        ]
    )
    live = live_experiment_of(experiment)
    shown: list[tuple[Visitor, str, datetime, np.ndarray, frozenset[int]]] = []
    exposed_at: dict[str, datetime] = {}
    dropped = treated = 0
    for user, visitor, arrival in zip(replay.users, visitors, arrivals, strict=True):
        decision = experiment_decide(experiment=live, visitor=visitor)
        if decision is None:
            continue
        items = lists[decision.variant_key][int(user)]
        if decision.variant_key == TREATMENT:
            treated += 1
        # Exactly floor(k * drop_share) of the first k treated exposures are lost.
        lost = decision.variant_key == TREATMENT and int(treated * config.drop_share) > dropped
        if lost:
            dropped += 1
        else:
            exposure_record(decision=decision, visitor=visitor)
            exposed_at[decision.person] = arrival
        shown.append((visitor, decision.variant_key, arrival, items, replay.positives[int(user)]))
    _backdate(experiment, exposed_at)
    simulation_interactions_create(
        shown=shown, item_pks=item_pks, experiment_key=EXPERIMENT_KEY, placement=PLACEMENT
    )
    return len(shown), dropped


def _analyze() -> None:
    """Fresh planner statistics: tables just filled in this transaction still look empty
    to the planner, and the results' joins then take seconds instead of milliseconds."""
    tables = ", ".join(
        connection.ops.quote_name(model._meta.db_table)
        for model in (Interaction, Exposure, Visitor)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {tables}")


def _backdate(experiment: Experiment, exposed_at: dict[str, datetime]) -> None:
    """The replay compresses `days` into seconds: exposures get their simulated arrival."""
    exposures = list(Exposure.objects.filter(experiment=experiment))
    for exposure in exposures:
        exposure.first_exposed_at = exposed_at[exposure.person]
    Exposure.objects.bulk_update(exposures, ["first_exposed_at"], batch_size=1000)
