"""The sequential RecBole report's readers: our markdown table and time-to-quality."""

from bench.recbole_sequential import our_run, parse_markdown_rows, seconds_to_reach

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
