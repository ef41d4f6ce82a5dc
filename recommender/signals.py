"""Forget this process's cached merchandising rules when they (or the category tree) change."""

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from recommender.merchandising import merchandising_rules_cache_clear
from recommender.models import MerchandisingRule
from webapp.models import Category


@receiver([post_save, post_delete], sender=MerchandisingRule)
@receiver([post_save, post_delete], sender=Category)
def merchandising_rules_changed(sender: type, **kwargs: Any) -> None:
    merchandising_rules_cache_clear()
