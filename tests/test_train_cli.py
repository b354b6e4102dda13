"""`symnet train` as a user runs it: defaults, JSON, plots, bad data, checkpoints."""

import json

import numpy as np
import pytest

from symnet.cli import main


def train_json(capsys, *args):
    code = main(["train", "--json", *args])
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1])


def test_default_run_fits_the_spiral(capsys):
    code, result = train_json(capsys)
    assert code == 0
    assert result["train_accuracy"] >= 0.98 and result["test_accuracy"] is None
    for key in ("final_loss", "epochs", "seconds", "sizes"):
        assert key in result
    assert result["sizes"] == [2, 100, 3]


@pytest.mark.slow
def test_digits_reaches_97_percent_on_its_test_split(capsys):
    code, result = train_json(capsys, "--dataset", "digits")
    assert code == 0 and result["test_accuracy"] >= 0.97


def test_progress_summary_and_plots(tmp_path, capsys):
    code = main(["train", "--epochs", "50", "--plot", str(tmp_path / "plots")])
    captured = capsys.readouterr()
    assert code == 0
    assert "epoch 50/50" in captured.err and "train accuracy" in captured.out
    for name in ("curves.png", "decision_boundary.png"):
        picture = tmp_path / "plots" / name
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_nan_in_a_data_file_is_rejected_naming_the_row(tmp_path, capsys):
    x = np.ones((6, 2))
    x[4, 0] = np.nan
    np.savez(tmp_path / "bad.npz", x=x, y=np.arange(6) % 2)
    assert main(["train", "--dataset", str(tmp_path / "bad.npz")]) == 2
    assert "row 4" in capsys.readouterr().err


def test_save_and_resume_continue_the_same_run(tmp_path, capsys):
    checkpoint = str(tmp_path / "run.npz")
    common = ["--hidden", "16", "--optimizer", "adam", "--lr", "0.01", "--batch-size", "50"]
    _, unbroken = train_json(capsys, *common, "--epochs", "8")
    _, first = train_json(capsys, *common, "--epochs", "4", "--save", checkpoint)
    _, resumed = train_json(capsys, *common, "--epochs", "8", "--resume", checkpoint)
    assert first["epochs"] == 4 and resumed["epochs"] == 8
    assert resumed["final_loss"] == unbroken["final_loss"]


def test_resuming_with_no_epochs_left_says_so(tmp_path, capsys):
    checkpoint = str(tmp_path / "run.npz")
    train_json(capsys, "--hidden", "8", "--epochs", "2", "--save", checkpoint)
    assert main(["train", "--hidden", "8", "--epochs", "2", "--resume", checkpoint,
                 "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["epochs"] == 2
    assert "has trained 2 epochs already, --epochs 2: nothing to train" in captured.err


def test_resuming_another_network_reports_both_shapes(tmp_path, capsys):
    checkpoint = str(tmp_path / "run.npz")
    train_json(capsys, "--hidden", "16", "--epochs", "2", "--save", checkpoint)
    assert main(["train", "--hidden", "8", "--resume", checkpoint]) == 2
    err = capsys.readouterr().err
    assert "(2, 16)" in err and "(2, 8)" in err


def test_a_loss_of_the_users_own_trains(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SYMNET_CACHE", str(tmp_path / "cache"))
    (tmp_path / "mine.py").write_text(
        "import sympy as sp\n"
        "from symnet import Loss, log_softmax\n"
        "from symnet.symbols import C, i, s, y\n"
        "# cross-entropy with label smoothing 0.1, which is not in the catalog\n"
        "smoothed_ce = Loss('smoothed_ce', -sp.Sum(((1 - sp.Rational(1, 10)) * y[i]\n"
        "    + sp.Rational(1, 10) / C) * log_softmax(s, C, i), (i, 0, C - 1)),\n"
        "    scores=s, size=C, target=y, target_kind='one_hot',\n"
        "    constraints=[sp.Eq(sp.Sum(y[i], (i, 0, C - 1)), 1)])\n")
    code, result = train_json(capsys, "--loss", f"{tmp_path}/mine.py:smoothed_ce",
                              "--epochs", "300")
    assert code == 0 and result["train_accuracy"] > 0.9
    assert list((tmp_path / "cache").rglob("smoothed_ce.py"))


def test_an_activation_that_is_a_loss_is_refused(capsys):
    assert main(["train", "--activation", "svm"]) == 2
    assert "svm is a loss, not an activation" in capsys.readouterr().err


def test_demo_runs_the_whole_flow(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    for marker in ("== 1. derive", "p[k] - y[k]", "== 2. prove", "refuted  L31 as on the slide",
                   "== 3. generate", "def loss(s, y):", "== 4. train", "train accuracy 0.99"):
        assert marker in out


def test_an_activation_of_the_users_own_trains(tmp_path, capsys, monkeypatch):
    from pathlib import Path

    monkeypatch.setenv("SYMNET_CACHE", str(tmp_path / "cache"))
    mine = Path(__file__).resolve().parents[1] / "examples" / "my_declarations.py"
    code, result = train_json(capsys, "--activation", f"{mine}:mish", "--epochs", "1000",
                              "--layer-by-layer")
    assert code == 0 and result["train_accuracy"] > 0.8
    assert list((tmp_path / "cache").rglob("mish.py"))
