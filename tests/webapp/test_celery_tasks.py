"""Every task of the project can be queued: Celery refuses one whose soft limit is above
its hard limit (the global soft limit applies to tasks that set only a hard one)."""

import pytest

from webapp.celery import app

PROJECT_PACKAGES = ("webapp.", "recommender.", "ml.", "scraper.")


def project_tasks() -> list[str]:
    app.loader.import_default_modules()
    return sorted(name for name in app.tasks if name.startswith(PROJECT_PACKAGES))


def test_the_project_registers_its_tasks() -> None:
    names = project_tasks()
    assert "recommender.tasks.refresh_trending" in names
    assert "recommender.tasks.refresh_answers" in names
    assert len(names) >= 10


@pytest.mark.parametrize("name", project_tasks())
def test_a_task_soft_time_limit_is_within_its_hard_limit(name: str) -> None:
    task = app.tasks[name]
    soft, hard = task.soft_time_limit, task.time_limit
    assert soft and hard, f"{name}: soft {soft}, hard {hard}"
    assert soft < hard, f"{name}: soft limit {soft} s is not below the hard limit {hard} s"
