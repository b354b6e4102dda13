"""The lecture reproduced by the runtime, trained with generated modules only."""

import numpy as np
import pytest

from symnet.runtime import modules, plots
from symnet.runtime.data import spiral
from symnet.runtime.network import Network, initial_parameters
from symnet.runtime.train import TrainConfig, train

affine = modules.load("layers", "affine")
relu = modules.load("activations", "relu")
sigmoid = modules.load("activations", "sigmoid")
softmax_ce = modules.load("losses", "softmax_ce")
svm = modules.load("losses", "svm")
l2 = modules.load("regularizers", "l2")


def network(sizes, activation=relu, loss=softmax_ce, target_kind="one_hot", lam=1e-3,
            activation_name="relu", seed=0, biases=True):
    net = Network(tuple(sizes), affine, activation, loss, target_kind, l2 if lam else None, lam,
                  biases=biases)
    net.params = initial_parameters(sizes, activation_name, seed, biases=biases)
    return net


def trained_spiral_network(lam=5e-4, epochs=2000, seed=0):
    data = spiral(seed=seed)
    net = network((2, 100, 3), lam=lam, seed=seed)
    history = train(net, data, TrainConfig(epochs=epochs, lr=1.0, optimizer="sgd", seed=seed))
    return net, history, data


@pytest.fixture(scope="module")
def spiral_run():
    return trained_spiral_network()


@pytest.mark.parametrize("loss, target_kind", [(svm, "class_index"), (softmax_ce, "one_hot")])
def test_L04_L06_linear_classifier_draws_linear_boundaries_below_the_network(
        loss, target_kind, spiral_run):
    data = spiral()
    linear = network((2, 3), loss=loss, target_kind=target_kind)
    history = train(linear, data, TrainConfig(epochs=300, lr=1.0 if loss is softmax_ce else 0.1))
    assert history.loss[-1] < history.loss[0]                 # vanilla descent does descend
    assert linear.params["W1"].shape == (2, 3)                 # one template per class
    assert linear.accuracy(data.x_train, data.y_train) < 0.65  # linear boundaries only...
    net, _, _ = spiral_run
    assert net.accuracy(data.x_train, data.y_train) >= 0.98    # ...well below the network


def test_L07_two_layer_relu_network_fits_the_spiral(spiral_run):
    net, history, data = spiral_run
    assert net.accuracy(data.x_train, data.y_train) >= 0.98
    assert history.loss[-1] < 0.5 * history.loss[0]


def _boundary_cells(net, data) -> float:
    """The share of a fine grid's neighbouring cells whose predicted classes differ."""
    _, _, grid = plots._grid(data.x_train, steps=200)
    regions = net.predict(grid).reshape(200, 200)
    return float(np.mean(regions[1:, :] != regions[:-1, :]) + np.mean(regions[:, 1:]
                                                                       != regions[:, :-1]))


@pytest.mark.slow
def test_L13_stronger_regularisation_smooths_the_boundaries(tmp_path):
    runs = [(lam, trained_spiral_network(lam=lam, epochs=2000)) for lam in (0.001, 0.01, 0.1)]
    lengths = [_boundary_cells(net, data) for _, (net, _, data) in runs]
    # strictly shorter boundaries as lambda grows: 0.016, 0.012, 0 with seed 0. At 0.1 the
    # penalty lambda*sum(W^2) on both layers (the lecture's R(W)) outweighs any fit of the
    # spiral and every weight decays to zero: one class everywhere, the smoothest boundary
    assert lengths[0] > lengths[1] > lengths[2]
    _, _, grid = plots._grid(runs[0][1][2].x_train, steps=50)
    for lam, (net, _, _) in runs[:2]:       # the weaker two still separate all three arms
        assert len(np.unique(net.predict(grid))) == 3, lam
    data = runs[0][1][2]
    picture = plots.decision_boundaries([(f"lambda = {lam}", net) for lam, (net, _, _) in runs],
                                        data.x_train, data.y_train, tmp_path / "l13.png")
    assert picture.stat().st_size > 10_000


def test_L11_three_layer_sigmoid_forward_pass_with_biases():
    rng = np.random.default_rng(11)
    net = network((3, 4, 4, 1), activation=sigmoid, activation_name="sigmoid", lam=0)
    for name, value in net.params.items():
        net.params[name] = rng.normal(size=value.shape)
    x = rng.normal(size=(5, 3))
    scores, _ = net.scores(x)

    def f(z):
        return 1 / (1 + np.exp(-z))
    p = net.params
    h1 = f(x @ p["W1"] + p["b1"])                     # the slide's h1 = f(W1 x + b1), batch first
    h2 = f(h1 @ p["W2"] + p["b2"])
    assert scores.shape == (5, 1)
    assert np.allclose(scores, h2 @ p["W3"] + p["b3"], rtol=1e-12)


def test_L14_a_single_neuron_fires_at_the_sigmoid_of_its_weighted_sum():
    inputs, weights, bias = np.array([[0.5, -1.0, 2.0]]), np.array([[0.3], [0.8], [-0.1]]), 0.2
    cell_body, _ = affine.forward(inputs, weights, np.array([[bias]]))
    firing_rate, _ = sigmoid.forward(cell_body)
    expected = 1.0 / (1.0 + np.exp(-(np.sum(inputs[0] * weights[:, 0]) + bias)))
    assert firing_rate.shape == (1, 1) and np.isclose(firing_rate[0, 0], expected, rtol=1e-14)


def test_same_seed_gives_a_bitwise_identical_loss_history():
    data = spiral(seed=1)
    histories = []
    for _ in range(2):
        net = network((2, 20, 3), seed=1)
        histories.append(train(net, data, TrainConfig(epochs=30, batch_size=50, lr=0.5,
                                                      optimizer="momentum", seed=1)).loss)
    assert histories[0] == histories[1]


def test_a_non_finite_loss_stops_training_and_keeps_the_last_good_parameters():
    data = spiral()
    squared_error = modules.load("losses", "squared_error")
    net = network((2, 20, 3), loss=squared_error, target_kind="real", lam=0)
    with np.errstate(over="ignore", invalid="ignore"):      # divergence is the point here
        history = train(net, data, TrainConfig(epochs=100, lr=1e8))
    assert history.stopped and "step" in history.stopped and "non-finite" in history.stopped
    assert all(np.isfinite(v).all() for v in net.params.values())
    assert history.epochs < 100


def test_a_step_that_is_not_finite_at_once_leaves_the_initial_parameters():
    from symnet.runtime.train import History, Snapshots, run_epoch

    net = network((2, 4, 3))
    initial = {name: value.copy() for name, value in net.params.items()}

    def scribbling_step(x, target):       # as the fused step does: updates, then reports
        for value in net.params.values():
            value[...] = np.nan
        return float("nan"), False

    history = History()
    assert not run_epoch(scribbling_step, Snapshots(net.params), np.zeros((6, 2)),
                         np.zeros((6, 3)), [np.arange(3), np.arange(3, 6)], history)
    assert history.steps == 1 and history.loss == [] and "at step 1" in history.stopped
    for name, value in net.params.items():
        np.testing.assert_array_equal(value, initial[name])


def test_an_interrupt_ends_cleanly_and_resuming_matches_an_unbroken_run():
    data = spiral(seed=2)
    config = TrainConfig(epochs=12, batch_size=64, lr=0.5, optimizer="adam", seed=2)
    unbroken = network((2, 16, 3), seed=2)
    expected = train(unbroken, data, config).loss

    def interrupt_at_five(history):
        if history.epochs == 5:
            raise KeyboardInterrupt

    net = network((2, 16, 3), seed=2)
    from symnet.runtime.optim import Adam
    optimizer = Adam(lr=0.5)
    history = train(net, data, config, on_epoch=interrupt_at_five, optimizer=optimizer)
    assert history.stopped.startswith("interrupted") and history.epochs == 5
    history.stopped = None
    resumed = train(net, data, config, history, optimizer=optimizer)
    assert resumed.loss == expected


@pytest.mark.parametrize("rows", [0, 1, 81, 82, 1000])
def test_predict_in_blocks_of_rows_equals_the_whole_batch_at_once(rows):
    net = network((64, 100, 10), seed=1)
    x = np.random.default_rng(2).standard_normal((rows, 64))
    whole, _ = net.scores(x)
    assert net.predict(x).shape == (rows,)
    assert np.array_equal(net.predict(x), np.argmax(whole, axis=1))   # 81 rows per block


@pytest.mark.parametrize("name, kind", [("softmax_ce", "one_hot"), ("svm", "class_index"),
                                        ("squared_error", "real"), ("hinge", "sign")])
def test_a_generated_loss_says_what_target_it_takes(name, kind):
    loss = modules.load("losses", name)
    assert loss.TARGET_KIND == kind
    assert Network((2, 3), affine, relu, loss).target_kind == kind     # no need to pass it


def test_a_loss_module_without_a_target_kind_asks_for_one():
    from types import ModuleType

    from symnet.errors import DataError

    with pytest.raises(DataError, match="has no TARGET_KIND.*pass target_kind"):
        Network((2, 3), affine, relu, ModuleType("old_loss"))
