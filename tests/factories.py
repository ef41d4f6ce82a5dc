"""factory_boy factories shared by every test folder."""

import uuid
from decimal import Decimal

import factory
from django.contrib.auth.models import User
from django.utils import timezone

from webapp.models import Category, EventType, Interaction, Item, Visitor


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct horse battery")


class CategoryFactory(factory.django.DjangoModelFactory[Category]):
    class Meta:
        model = Category

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.Sequence(lambda n: f"category-{n}")


class ItemFactory(factory.django.DjangoModelFactory[Item]):
    class Meta:
        model = Item

    external_id = factory.Sequence(lambda n: f"sku-{n}")
    title = factory.Sequence(lambda n: f"Item number {n}")
    description = "A fine thing."
    category = factory.SubFactory(CategoryFactory)
    list_price = Decimal("9.99")
    currency = "USD"


class VisitorFactory(factory.django.DjangoModelFactory[Visitor]):
    class Meta:
        model = Visitor

    consent_given_at = factory.LazyFunction(timezone.now)


class InteractionFactory(factory.django.DjangoModelFactory[Interaction]):
    class Meta:
        model = Interaction

    event_id = factory.LazyFunction(uuid.uuid4)
    visitor = factory.SubFactory(VisitorFactory)
    item = factory.SubFactory(ItemFactory)
    event_type = EventType.VIEW
    timestamp = factory.LazyFunction(timezone.now)


# --- Experiments -------------------------------------------------------------------------
from webapp.experiments.models import (  # noqa: E402 - grouped with their factories
    Experiment,
    ExperimentStatus,
    Exposure,
    Variant,
)


class ExperimentFactory(factory.django.DjangoModelFactory[Experiment]):
    class Meta:
        model = Experiment

    key = factory.Sequence(lambda n: f"experiment-{n}")
    name = factory.LazyAttribute(lambda e: f"Experiment {e.key}")
    seed = factory.LazyAttribute(lambda e: e.key)
    status = ExperimentStatus.RUNNING
    placement = "home_top_picks"


class VariantFactory(factory.django.DjangoModelFactory[Variant]):
    class Meta:
        model = Variant

    experiment = factory.SubFactory(ExperimentFactory)
    key = factory.Sequence(lambda n: f"variant-{n}")
    weight = 50
    config = factory.LazyFunction(lambda: {"strategy": "model", "model_version": None})


class ExposureFactory(factory.django.DjangoModelFactory[Exposure]):
    class Meta:
        model = Exposure

    variant = factory.SubFactory(VariantFactory)
    experiment = factory.LazyAttribute(lambda e: e.variant.experiment)
    visitor = factory.SubFactory(VisitorFactory)
    person = factory.LazyAttribute(lambda e: f"visitor:{e.visitor.pk}")
    first_exposed_at = factory.LazyFunction(timezone.now)
    bucket_version = 1


def experiment_with_variants(
    *, weights: tuple[int, ...] = (50, 50), **fields: object
) -> Experiment:
    """An experiment (running unless told) with variants "control", "v1", "v2"... of `weights`."""
    experiment = ExperimentFactory.create(**fields)
    for position, weight in enumerate(weights):
        VariantFactory.create(
            experiment=experiment,
            key="control" if position == 0 else f"v{position}",
            weight=weight,
            is_control=position == 0,
            position=position,
        )
    return experiment
