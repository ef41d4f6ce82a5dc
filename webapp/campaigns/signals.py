"""Forget this process's snapshot of live campaigns when a campaign or creative changes."""

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from webapp.campaigns.models import Campaign, Creative
from webapp.campaigns.selectors import campaigns_cache_clear


@receiver([post_save, post_delete], sender=Campaign)
@receiver([post_save, post_delete], sender=Creative)
def campaigns_changed(sender: type, **kwargs: Any) -> None:
    campaigns_cache_clear()
