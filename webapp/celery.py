"""The Celery application; configuration comes from Django settings (``CELERY_*``)."""

import os

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.local")

app = Celery("webapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def broker_queues_declare() -> list[str]:
    """Create the broker's queues (the default one and every routed one) now; return them.

    Run before a worker and beat start together on a fresh database: with kombu's
    SQLAlchemy transport (the embedded default) both would insert the same `kombu_queue`
    row at once, and the loser fails its first publish or consume.
    """
    names = {app.conf.task_default_queue}
    names |= {route["queue"] for route in (app.conf.task_routes or {}).values()}
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for name in sorted(names):
            # As Celery declares a queue it creates: a direct exchange of the same name.
            Queue(name, Exchange(name), routing_key=name).bind(channel).declare()
    return sorted(names)
