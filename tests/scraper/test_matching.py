"""Matching: features, labeling functions, blocking, the weak matcher, and the services
that write matches (exact identifiers, model, thresholds, review, gold labels)."""

import random
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User

from scraper.matching.blocking import BlockingIndex, candidate_pairs
from scraper.matching.features import (
    ProductRecord,
    TitleSpace,
    model_numbers,
    normalize_gtin,
    pair_views,
)
from scraper.matching.labeling import (
    ABSTAIN,
    MATCH,
    NON_MATCH,
    lf_brand_model_number,
    lf_gtin,
    lf_price_ratio,
    lf_variant_conflict,
)
from scraper.matching.matcher import WeakMatcher, best_per_product
from scraper.models import ProductMatch
from scraper.models.prices import MatchMethod, MatchStatus
from scraper.services.matching import (
    REVIEW_THRESHOLD,
    _training_pairs,
    product_match_approve,
    product_match_reject,
    product_matches_run,
)
from scraper.tasks.prices import prices_after_crawl
from tests.factories import ItemFactory
from tests.scraper.price_factories import (
    CompetitorProductFactory,
    CompetitorSourceFactory,
    PriceObservationFactory,
    ProductMatchFactory,
)

BRANDS = ["Sony", "Bose", "Canon", "Philips", "Braun", "Garmin", "Makita", "Lenovo"]
KINDS = ["wireless headphones", "mirrorless camera", "electric shaver", "gps watch", "drill"]


def view(left: ProductRecord, right: ProductRecord) -> Any:
    return pair_views([(left, right)], TitleSpace([left.title, right.title]))[0]


def test_model_numbers_ignore_hyphens_units_and_words() -> None:
    assert model_numbers("Sony WH-1000XM4 headphones 64GB 2 pack") == {"wh1000xm4"}
    assert model_numbers("wh1000xm4") == model_numbers("WH-1000XM4")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("4006381333931", "04006381333931"), ("0 12345 67890 5", "00012345678905"), ("123", "")],
)
def test_gtins_are_compared_as_14_digits(raw: str, expected: str) -> None:
    assert normalize_gtin(raw) == expected


def test_labeling_functions_vote_or_abstain() -> None:
    ours = ProductRecord(1, "Sony WH-1000XM4 headphones 128GB", "Sony", 300.0, "4006381333931")
    same = ProductRecord(
        2, "SONY wh1000xm4 wireless headset 128gb", "sony", 280.0, "04006381333931"
    )
    other = ProductRecord(3, "Sony WH-1000XM3 headphones 64GB", "Sony", 90.0, "5000000000001")

    assert lf_gtin(view(ours, same)) == MATCH
    assert lf_gtin(view(ours, other)) == NON_MATCH
    assert lf_gtin(view(ours, ProductRecord(4, "x"))) == ABSTAIN
    assert lf_brand_model_number(view(ours, same)) == MATCH
    assert lf_brand_model_number(view(ours, other)) == NON_MATCH
    assert lf_variant_conflict(view(ours, other)) == NON_MATCH
    assert lf_variant_conflict(view(ours, same)) == ABSTAIN
    assert lf_price_ratio(view(ours, other)) == NON_MATCH
    assert lf_price_ratio(view(ours, same)) == ABSTAIN


def catalog(seed: int = 3) -> tuple[list[ProductRecord], list[ProductRecord], dict[int, int]]:
    """Items, noisy competitor copies of half of them (truth by key), and distractors."""
    rng = random.Random(seed)
    items = []
    for key in range(60):
        model = f"{rng.choice('ABKMX')}{rng.choice('RSTZ')}-{rng.randint(100, 9999)}"
        brand, kind = rng.choice(BRANDS), rng.choice(KINDS)
        items.append(
            ProductRecord(
                key,
                f"{brand} {kind} {model} black",
                brand,
                round(rng.uniform(20, 500), 2),
                f"{rng.randint(10**12, 10**13 - 1)}",
            )
        )
    listings, truth = [], {}
    for item in items[:30]:
        key = 1000 + item.key
        words = item.title.replace("-", "").split() if rng.random() < 0.5 else item.title.split()
        rng.shuffle(words)
        gtin = item.gtin if item.key % 3 == 0 else ""
        listings.append(
            ProductRecord(
                key,
                " ".join([*words, "free shipping"]),
                item.brand,
                item.price and round(item.price * 1.05, 2),
                gtin,
            )
        )
        truth[key] = item.key
    for n, item in enumerate(items[30:40]):  # same brand and type, another model
        listings.append(
            ProductRecord(
                2000 + n,
                f"{item.brand} {item.title.split()[1]} ZZ-{n}77 new",
                item.brand,
                item.price,
            )
        )
    return items, listings, truth


def test_blocking_keeps_the_true_item_among_few_candidates() -> None:
    items, listings, truth = catalog()
    index = BlockingIndex(items)

    found = sum(
        1
        for listing in listings
        if listing.key in truth
        and truth[listing.key] in {c.key for c in index.candidates(listing, 5)}
    )

    assert found == len(truth)
    assert len(candidate_pairs(listings, items, limit=5)) <= 5 * len(listings)


def test_weak_matcher_matches_noisy_titles_without_identifiers() -> None:
    items, listings, truth = catalog()
    pairs = candidate_pairs(listings, items)

    matcher = WeakMatcher().fit(pairs)
    best = best_per_product(pairs, matcher.predict_proba(pairs))
    # At the default review threshold: the true item is the best candidate and is
    # proposed; no distractor gets near it.
    accepted = {s.product_key: s.item_key for s in best if s.probability >= REVIEW_THRESHOLD}

    without_gtin = [k for k, listing in zip(truth, listings, strict=False) if not listing.gtin]
    right = sum(1 for k in without_gtin if accepted.get(k) == truth[k])
    wrong = sum(1 for k, v in accepted.items() if truth.get(k) != v)
    assert right >= 0.9 * len(without_gtin)
    assert wrong == 0
    assert matcher.classifier is not None


def test_contradicting_gtins_veto_a_match() -> None:
    items, listings, _ = catalog()
    pairs = candidate_pairs(listings, items)
    matcher = WeakMatcher().fit(pairs)
    twin = items[0]
    clash = ProductRecord(9999, twin.title, twin.brand, twin.price, "1111111111116")

    assert matcher.predict_proba([(clash, twin)])[0] == 0.0


# --- services (Postgres) --------------------------------------------------------------


def record_of(pk: int) -> ProductRecord:
    """Our item `pk` as matching sees it (only its key matters here)."""
    return ProductRecord(pk, "any title")


def store(items: list[ProductRecord], listings: list[ProductRecord]) -> dict[int, int]:
    """Write the records as Items and CompetitorProducts; record key → row pk."""
    source = CompetitorSourceFactory.create()
    pks = {}
    for record in items:
        pks[record.key] = ItemFactory.create(
            title=record.title,
            list_price=Decimal(str(record.price)),
            attributes={"brand": record.brand, "gtin": record.gtin},
        ).pk
    for record in listings:
        product = CompetitorProductFactory.create(
            source=source, title=record.title, brand=record.brand, gtin=record.gtin
        )
        PriceObservationFactory.create(product=product, price=Decimal(str(record.price)))
        pks[record.key] = product.pk
    return pks


@pytest.mark.django_db
def test_matching_run_accepts_exact_then_model_matches_and_is_idempotent(settings: Any) -> None:
    settings.SCRAPER_MATCH_ACCEPT_THRESHOLD = 0.9
    settings.SCRAPER_MATCH_REVIEW_THRESHOLD = 0.3
    items, listings, truth = catalog()
    pks = store(items, listings)

    result = product_matches_run()

    exact = ProductMatch.objects.filter(method=MatchMethod.EXACT_GTIN)
    assert result.exact == exact.count() == 10
    assert all(m.status == MatchStatus.AUTO_ACCEPTED for m in exact)
    model = ProductMatch.objects.filter(method=MatchMethod.MODEL)
    correct = {(pks[k], pks[v]) for k, v in truth.items()}
    right = sum(1 for m in model if (m.product_id, m.item_id) in correct)
    assert right >= 18  # of the 20 listings without GTIN
    assert result.accepted + result.pending == model.count()
    assert all((m.status == MatchStatus.AUTO_ACCEPTED) == (m.probability >= 0.9) for m in model)

    again = product_matches_run()
    assert again.exact == again.accepted == again.pending == 0
    assert ProductMatch.objects.count() == result.exact + result.accepted + result.pending


@pytest.mark.django_db
def test_exact_matching_prefers_gtin_and_skips_ambiguous_identifiers() -> None:
    a = ItemFactory.create(attributes={"gtin": "4006381333931", "mpn": "X-1"})
    ItemFactory.create(attributes={"mpn": "X-1"})
    b = ItemFactory.create(attributes={"mpn": "Y-2"})
    by_gtin = CompetitorProductFactory.create(gtin="04006381333931", mpn="Y-2")
    ambiguous = CompetitorProductFactory.create(mpn="x1", title="zzz")
    by_mpn = CompetitorProductFactory.create(mpn="y 2", title="qqq")

    product_matches_run()

    assert ProductMatch.objects.get(product=by_gtin).item == a
    assert ProductMatch.objects.get(product=by_mpn).method == MatchMethod.EXACT_MPN
    assert ProductMatch.objects.get(product=by_mpn).item == b
    assert not ProductMatch.objects.filter(product=ambiguous, method=MatchMethod.EXACT_MPN).exists()


@pytest.mark.django_db
def test_review_makes_gold_labels_and_rejected_pairs_are_not_proposed_again() -> None:
    reviewer = User.objects.create_user("reviewer")
    pending = ProductMatchFactory.create(
        status=MatchStatus.PENDING, method=MatchMethod.MODEL, probability=0.7
    )

    product_match_reject(match=pending, user=reviewer)
    pending.refresh_from_db()
    assert (pending.status, pending.reviewed_by) == (MatchStatus.REJECTED, reviewer)
    assert pending.reviewed_at is not None

    # The product is unmatched again; the only candidate is the rejected item.
    pending.item.title = pending.product.title
    pending.item.save()
    product_matches_run()
    assert not ProductMatch.objects.exclude(pk=pending.pk).filter(product=pending.product).exists()

    approved = product_match_approve(match=pending, user=reviewer)
    assert approved.status == MatchStatus.APPROVED


@pytest.mark.django_db
def test_reviewed_matches_are_the_gold_labels_of_the_next_training() -> None:
    items, listings, _ = catalog()
    pks = store(items, listings[:25])
    product_matches_run()
    first, second = ProductMatch.objects.filter(method=MatchMethod.MODEL)[:2]
    product_match_approve(match=first, user=None)
    product_match_reject(match=second, user=None)
    records = {pk: record_of(pk) for pk in (first.item_id, second.item_id)}

    examples, gold = _training_pairs([], records)

    assert gold == {(first.product_id, first.item_id): 1, (second.product_id, second.item_id): 0}
    assert {(a.key, b.key) for a, b in examples} == set(gold)
    assert pks


@pytest.mark.django_db
def test_task_after_crawl_matches_the_source_and_alerts(mailoutbox: list[Any]) -> None:
    item = ItemFactory.create(attributes={"gtin": "4006381333931"}, list_price=Decimal("100"))
    product = CompetitorProductFactory.create(gtin="4006381333931")
    PriceObservationFactory.create(product=product, price=Decimal("50"), currency="USD")
    from tests.scraper.price_factories import PriceAlertRuleFactory

    PriceAlertRuleFactory.create(threshold_percent=Decimal("10"))

    prices_after_crawl.apply(kwargs={"source_id": product.source_id, "run_id": 0}).get()

    assert ProductMatch.objects.get(product=product).item == item
    assert len(mailoutbox) == 1
