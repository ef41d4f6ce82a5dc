"""Train every role of the training plan now, or queue it for the worker."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ml.models import ModelVersion, ModelVersionStatus
from ml.selectors import training_run_in_progress
from ml.services.training import training_run_execute
from ml.services.training_runs import TrainingError, training_run_create, training_run_queue


class Command(BaseCommand):
    help = "Train the models of ML_TRAINING_PLAN (queued for the Celery worker, or --sync)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sync", action="store_true", help="train in this process")
        parser.add_argument(
            "--if-none-active",
            action="store_true",
            help="do nothing when a model is already serving or a training is under way",
        )

    def handle(self, *args: object, **options: object) -> None:
        if options["if_none_active"] and (
            ModelVersion.objects.filter(status=ModelVersionStatus.ACTIVE).exists()
            or training_run_in_progress() is not None
        ):
            self.stdout.write("Models are serving (or training): nothing to do.")
            return
        if not options["sync"]:
            run = training_run_queue(trigger="manage.py train_models")
            self.stdout.write(f"Training run {run.pk} queued for the worker.")
            return
        try:
            done = training_run_execute(run_id=training_run_create(trigger="manage.py").pk)
        except TrainingError as error:
            raise CommandError(str(error)) from error
        if done is None:
            raise CommandError("The run was taken by another worker.")
        for entry in done.log:
            self.stdout.write(f"{entry.get('role')}: {entry.get('decision', entry)}")
        self.stdout.write(self.style.SUCCESS(f"Training run {done.pk}: {done.status}"))
