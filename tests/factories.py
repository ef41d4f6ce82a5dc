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
