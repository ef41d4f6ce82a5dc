from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "webapp.segments"
    label = "segments"
    verbose_name = "Segments"

    def ready(self) -> None:
        from webapp.segments import signals  # noqa: F401 - connects the receivers
