from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "webapp.campaigns"
    label = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        from webapp.campaigns import signals  # noqa: F401 - connects the receivers
