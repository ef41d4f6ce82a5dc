"""One module per integration; base.py star-imports this package."""

from webapp.settings.integrations.api import *  # noqa: F403
from webapp.settings.integrations.celery import *  # noqa: F403
from webapp.settings.integrations.ml import *  # noqa: F403
from webapp.settings.integrations.recommender import *  # noqa: F403
from webapp.settings.integrations.scraper import *  # noqa: F403
from webapp.settings.integrations.segments import *  # noqa: F403
from webapp.settings.integrations.tracking import *  # noqa: F403
