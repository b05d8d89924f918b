"""The benchmark drivers of ``make bench`` (benchmarks/), on tiny runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from course_lib.vision import SmallResNet

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from cifar10_bench import benchmark  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


def test_benchmark_tiny_run_reports_everything(real_data):
    torch.set_num_threads(3)
    result = benchmark(epochs=1, width=4, threads=1, n_train=100)
    assert torch.get_num_threads() == 3  # restored
    assert result["n_train"] == 100 and result["threads"] == 1 and result["epochs"] == 1
    assert "baseline_accuracy" not in result
    assert 0.0 <= result["accuracy"] <= 1.0 and result["train_seconds"] > 0
    assert result["images_per_second"] == pytest.approx(100 / result["train_seconds"])
    assert result["params"] == sum(p.numel() for p in SmallResNet(4).parameters())
    with_base = benchmark(
        epochs=1, width=4, threads=1, n_train=100, baseline=True, baseline_epochs=1
    )
    assert with_base["baseline_epochs"] == 1 and 0.0 <= with_base["baseline_accuracy"] <= 1.0
    assert with_base["baseline_seconds"] > 0
    same_budget = benchmark(epochs=1, width=4, threads=1, n_train=100, baseline=True)
    # the tutorial CNN trains epoch after epoch until it has used the course CNN's time
    assert same_budget["baseline_seconds"] >= same_budget["train_seconds"]
    assert same_budget["baseline_epochs"] >= 1


def test_mutants_read_the_failed_claim_from_a_coloured_traceback():
    import mutants

    report = (
        "\x1b[0;31mAssertionError\x1b[0m                    Traceback (most recent call last)\n"
        '\x1b[1;32m     39\x1b[0m raise AssertionError(f"Claim not confirmed: '
        '\x1b[38;5;132;01m{\x1b[39;00mstatement\x1b[38;5;132;01m}\x1b[39;00m")\n'
        "\x1b[0;31mAssertionError\x1b[0m: Claim not confirmed: He trains well — 9.8% test accuracy\n"
    )
    assert mutants.failed_claim(report) == "He trains well — 9.8% test accuracy"
    assert mutants.failed_claim("ZeroDivisionError: division by zero") == ""
