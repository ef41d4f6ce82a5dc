from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "webapp.experiments"
    label = "experiments"
    verbose_name = "A/B tests"

    def ready(self) -> None:
        from webapp.experiments import signals  # noqa: F401 - connects the receivers
