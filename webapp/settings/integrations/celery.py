"""Celery: Redis in production, the private Postgres (kombu's SQLAlchemy transport) by default."""

from webapp.settings.env import database_url, env


def _default_broker_url() -> str:
    redis_url: str = env.str("REDIS_URL", default="")
    if redis_url:
        return redis_url
    url = database_url()
    scheme, rest = url.split("://", 1)
    return f"sqla+postgresql+psycopg://{rest}" if scheme.startswith("postgres") else url


CELERY_BROKER_URL: str = env.str("CELERY_BROKER_URL", default="") or _default_broker_url()
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES_NAMES = ("default", "scrape", "train")
CELERY_TASK_ROUTES = {
    "scraper.tasks.*": {"queue": "scrape"},
    "ml.tasks.*": {"queue": "train"},
}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 60 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 55 * 60
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
