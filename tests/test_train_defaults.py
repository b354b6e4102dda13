"""Defaults that train: `symnet train` with a loss or activation whose needs differ from the
spiral's recipe gets its own learning rate and lambda, and a run that still ends near
chance says, in one line, what to try; a diverging run is one `stopped:` line, not a page of
numpy warnings."""

from __future__ import annotations

import json

import pytest

from tests.helpers import symnet


def train(*args: str):
    return symnet("train", *args)


@pytest.mark.parametrize("args", [("--loss", "squared_error"), ("--activation", "sigmoid")])
def test_the_default_recipe_trains_the_spiral_for_this_loss_or_activation(args):
    """Before: squared error ended at chance (0.333, loss 401), sigmoid at 0.633."""
    result = train(*args, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["train_accuracy"] >= 0.95, summary
    assert "hint" not in summary


def test_a_run_that_ends_near_chance_says_what_to_try():
    result = train("--loss", "squared_error", "--lr", "1.0", "--epochs", "300")
    assert result.returncode == 0, result.stderr
    hints = [line for line in result.stdout.splitlines() if line.startswith("hint: ")]
    assert hints == ["hint: the run ended near chance (train accuracy 0.333) and its loss did "
                     "not fall: try a smaller --lr"]


def test_a_diverging_run_prints_no_numpy_warnings():
    result = train("--loss", "squared_error", "--lr", "3", "--epochs", "300", "--json")
    assert result.returncode == 1
    assert "RuntimeWarning" not in result.stderr, result.stderr[-1000:]
    assert "non-finite loss" in json.loads(result.stdout)["stopped"]
