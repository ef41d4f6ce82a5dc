"""The sequential RecBole report's readers (our markdown table, time-to-quality, progress
of unfinished fits) and the runner's epoch resume."""

from pathlib import Path

import pytest
import torch

from bench import recbole_sequential
from bench.recbole_runner import EpochResume
from bench.recbole_sequential import our_run, parse_markdown_rows, progress, seconds_to_reach

TABLE = """# title

**Protocol**: text

| model | kind | NDCG@10 | Recall@10 | valid NDCG@10 | NDCG@10 history incl. valid | Recall@10 history incl. valid | train s (chosen) | tuning s (grid) | settings | best/run epochs | chosen |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
| pop | order-blind | 0.0420 | 0.0901 | 0.0368 | 0.0420 | 0.0901 | 0.0 | 0.6 | 4 | - | half_life_days=30.0 |
| sasrec | sequential | 0.0833 | 0.1697 | 0.1112 | 0.0896 | 0.1707 | 236.7 | 237.1 | 1 | 9/12 | dim=64, layers=2 |
"""  # noqa: E501


def test_markdown_rows_read_by_column_name() -> None:
    rows = parse_markdown_rows(TABLE)

    assert [row["model"] for row in rows] == ["pop", "sasrec"]
    sasrec = rows[1]
    assert sasrec["kind"] == "sequential"
    assert sasrec["ndcg@10"] == 0.0833
    assert sasrec["history_ndcg@10"] == 0.0896
    assert sasrec["valid_ndcg@10"] == 0.1112
    assert sasrec["train_seconds"] == 236.7
    assert sasrec["epochs"] == "9/12"


def test_seconds_to_reach_counts_train_and_validation_up_to_the_first_hit() -> None:
    log = [
        {"train_s": 10.0, "valid_s": 1.0, "valid_ndcg@10": 0.05},
        {"train_s": 10.0, "valid_s": 1.0, "valid_ndcg@10": 0.11},
        {"train_s": 10.0, "valid_s": 1.0, "valid_ndcg@10": 0.12},
    ]

    assert seconds_to_reach(log, 0.10) == "22 (epoch 2)"
    assert seconds_to_reach(log, 0.13) == "not reached in 3 epochs"


def test_our_run_label_takes_epochs_from_command_and_threads_from_machine() -> None:
    run = our_run(
        "Command: flock /tmp/bench.lock env OMP_NUM_THREADS=2 python sequential_bench.py "
        "--device auto --epochs 200",
        "Machine: 2 cores, OMP_NUM_THREADS=1, device auto",
        "results.json",
        [],
    )

    assert run.label == "ours (at most 200 epochs; results.json)"
    assert run.threads == "1"


def test_progress_reads_each_grid_setting_from_the_runner_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recbole_sequential, "LOG_DIR", tmp_path)
    log = tmp_path / "recbole-temporal-2020-SASRec.log"
    log.write_text(
        "epoch 1: {'train_s': 500.0, 'valid_s': 0.3, 'valid_ndcg@10': 0.04}\n"  # a stale fit
        "setting 0 fit starts\n"
        "epoch 1: {'train_s': 300.0, 'train_cpu_s': 240.0, 'valid_s': 0.3, 'valid_ndcg@10': 0.05}\n"
        "resumed after epoch 1\n"
        "epoch 2: {'train_s': 250.0, 'train_cpu_s': 230.0, 'valid_s': 0.3, 'valid_ndcg@10': 0.07}\n"
        "epoch 3: {'train_s': 250.0, 'train_cpu_s': 230.0, 'valid_s': 0.3, 'valid_ndcg@10': 0.06}\n"
        "setting 0: {'hidden_size': 64} valid ndcg@10=0.0700 epochs=3 fit_s=800.0\n"
        "setting 1 fit starts\n"
        "epoch 1: {'train_s': 400.0, 'train_cpu_s': 390.0, 'valid_s': 0.3, 'valid_ndcg@10': 0.08}\n"
    )

    text = progress("SASRec")

    assert text == (
        "in progress: setting 0 (hidden_size=64): done, 3 epochs, best valid NDCG@10 0.0700 "
        "(epoch 2), 800 s wall, 233 CPU s an epoch; setting 1 (hidden_size=128): running, "
        "1 epochs, best valid NDCG@10 0.0800 (epoch 1), 400 s wall, 390 CPU s an epoch"
    )
    assert progress("NextItNet") == "not run yet"


class FakeLoader:
    def __init__(self) -> None:
        self.generator = torch.Generator().manual_seed(7)


class FakeTrainer:
    """What EpochResume reads and writes of a RecBole trainer."""

    def __init__(self, best_file: Path) -> None:
        self.model = torch.nn.Linear(4, 3)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=0.01)
        self.start_epoch, self.cur_step = 0, 0
        self.best_valid_score = -1.0
        self.best_valid_result: dict[str, float] | None = None
        self.saved_model_file = str(best_file)
        self.train_loss_dict: dict[int, float] = {}

    def step(self) -> None:
        self.model(torch.randn(5, 4)).sum().backward()
        self.optimizer.step()


def test_a_resumed_fit_goes_on_from_the_saved_epoch_with_the_same_state(tmp_path: Path) -> None:
    best = tmp_path / "SASRec-best.pth"
    best.write_bytes(b"weights")
    job = {"model": "SASRec", "seed": 2020, "threads": 1}
    trainer, loader = FakeTrainer(best), FakeLoader()
    trainer.step()
    trainer.cur_step, trainer.best_valid_score = 1, 0.07
    trainer.best_valid_result = {"ndcg@10": 0.07}
    trainer.train_loss_dict = {0: 3.0, 1: 2.5}
    torch.randperm(10, generator=loader.generator)  # the loader has shuffled once
    EpochResume(tmp_path, job, {"hidden_size": 64}).save(trainer, loader, 1, {"valid_curve": [1]})
    expected_next = (torch.rand(3), torch.randperm(10, generator=loader.generator))

    again, again_loader = FakeTrainer(tmp_path / "other.pth"), FakeLoader()
    torch.rand(5)  # the new process's RNG has moved on
    restored = EpochResume(tmp_path, {**job, "threads": 2}, {"hidden_size": 64}).restore(
        again, again_loader
    )

    assert restored is not None and restored["valid_curve"] == [1]
    assert (again.start_epoch, again.cur_step, again.best_valid_score) == (2, 1, 0.07)
    assert again.saved_model_file == str(best)
    assert again.train_loss_dict == {0: 3.0, 1: 2.5}
    for mine, theirs in zip(again.model.parameters(), trainer.model.parameters(), strict=True):
        assert torch.equal(mine, theirs)
    assert again.optimizer.state_dict()["state"][0]["step"] == 1
    assert torch.equal(torch.rand(3), expected_next[0])
    assert torch.equal(torch.randperm(10, generator=again_loader.generator), expected_next[1])


def test_a_state_of_another_setting_or_without_its_best_weights_is_ignored(tmp_path: Path) -> None:
    best = tmp_path / "best.pth"
    best.write_bytes(b"weights")
    job = {"model": "SASRec", "seed": 2020}
    EpochResume(tmp_path, job, {"hidden_size": 64}).save(FakeTrainer(best), FakeLoader(), 0, {})

    other_setting = EpochResume(tmp_path, job, {"hidden_size": 128})
    fresh = FakeTrainer(best)
    assert other_setting.restore(fresh, FakeLoader()) is None
    assert fresh.start_epoch == 0
    best.unlink()
    assert EpochResume(tmp_path, job, {"hidden_size": 64}).restore(fresh, FakeLoader()) is None
