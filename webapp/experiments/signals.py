"""Forget this process's snapshot of running experiments when one (or a variant) changes."""

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from webapp.experiments.models import Experiment, Variant
from webapp.experiments.selectors import experiments_cache_clear


@receiver([post_save, post_delete], sender=Experiment)
@receiver([post_save, post_delete], sender=Variant)
def experiments_changed(sender: type, **kwargs: Any) -> None:
    experiments_cache_clear()
