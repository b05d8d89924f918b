"""course_lib.intro (notebook 01)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_feedback
from matplotlib.figure import Figure
from sklearn.linear_model import LinearRegression

from course_lib import intro, models


def test_diabetes_bmi_is_the_raw_feature():
    x, y = intro.diabetes_bmi()
    assert x.shape == y.shape == (442,)
    assert 18 <= x.min() and x.max() <= 43 and 25 <= y.min() and y.max() <= 346


def test_predict_and_mse():
    assert np.allclose(intro.predict([1.0, 2.0], 3.0, 1.0), [4.0, 7.0])
    assert intro.mse([1, 2, 3], [1, 2, 5]) == pytest.approx(4 / 3)
    assert intro.mse([0.0], [0.0]) == 0.0


def _title_mse(fig: Figure) -> float:
    return float(fig.axes[0].get_title().split("MSE = ")[1].replace(",", ""))


@pytest.mark.parametrize("w, b", [(-5.0, -300.0), (-5.0, 300.0), (20.0, -300.0), (20.0, 300.0)])
def test_neuron_figure_scores_the_slider_corners_far_above_the_best_line(w, b):
    x, y = intro.diabetes_bmi()
    (w_opt, b_opt), best = intro.closed_form_least_squares(x[:, None], y)
    mean_only = intro.mse(y, np.full_like(y, y.mean()))
    corner = intro.neuron_figure(w, b)
    red = corner.axes[0].get_lines()[0]  # the learner's line
    assert np.allclose(red.get_ydata(), w * red.get_xdata() + b)
    assert _title_mse(corner) > 1.4 * mean_only  # every corner is worse than ignoring BMI
    assert _title_mse(intro.neuron_figure(w_opt[0], b_opt)) == pytest.approx(best, abs=0.5)


def test_neuron_figure_default_beats_the_mean_and_the_best_line_is_under_4000():
    x, y = intro.diabetes_bmi()
    mean_only = intro.mse(y, np.full_like(y, y.mean()))
    assert _title_mse(intro.neuron_figure(5.0, 20.0)) < mean_only  # the notebook's claim
    (_, _), best = intro.closed_form_least_squares(x[:, None], y)
    assert best < 4000 < mean_only  # the notebook's challenge can be met, not by the mean


def test_closed_form_matches_sklearn():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 4))
    y = X @ [1.0, -2.0, 0.0, 3.0] + 0.5 + rng.normal(0, 0.1, 50)
    (w, b), loss = intro.closed_form_least_squares(X, y)
    sk = LinearRegression().fit(X, y)
    assert np.allclose(w, sk.coef_) and b == pytest.approx(sk.intercept_)
    assert loss == pytest.approx(np.mean((sk.predict(X) - y) ** 2))


def test_held_out_mse_is_above_training_mse_and_ranks_the_inputs():
    ds_x, ds_y = intro.diabetes_bmi()
    (_, _), train_bmi = intro.closed_form_least_squares(ds_x[:, None], ds_y)
    held_bmi = intro.held_out_mse(ds_x[:, None], ds_y, seed=0)
    assert train_bmi < held_bmi < 1.1 * train_bmi
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 2))
    y = 2 * X[:, 0] + rng.normal(0, 0.1, 100)  # column 1 is noise
    assert intro.held_out_mse(X[:, :1], y, seed=1) < 0.05 < intro.held_out_mse(X[:, 1:], y, seed=1)
    assert intro.held_out_mse(X, y, seed=3) == intro.held_out_mse(X, y, seed=3)


def test_fit_linear_gd_converges_on_a_well_conditioned_problem():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    y = X @ [2.0, -1.0, 0.5] + 3.0
    layer, losses = intro.fit_linear_gd(X, y, steps=500, lr=0.1, seed=0)
    assert losses[-1] < 1e-8 < losses[0]
    assert np.all(np.diff(losses[:100]) < 0)  # below the stability limit every step lowers the loss
    assert np.allclose(layer.weight.detach().numpy().ravel(), [2.0, -1.0, 0.5], atol=1e-4)
    assert layer.bias.item() == pytest.approx(3.0, abs=1e-4)
    other, _ = intro.fit_linear_gd(X, y, steps=0, seed=1)
    assert not torch.equal(other.weight, intro.fit_linear_gd(X, y, steps=0, seed=0)[0].weight)


def test_parameter_table_lists_every_tensor_of_the_state():
    table = intro.parameter_table(models.mlp([64, 32, 10]))
    assert table == [
        ("0.weight", (32, 64), 2048), ("0.bias", (32,), 32),
        ("2.weight", (10, 32), 320), ("2.bias", (10,), 10),
    ]  # fmt: skip
    assert sum(n for *_, n in table) == 2410


def test_stacked_linear_layers_collapse_to_one_but_not_with_relu():
    x = torch.randn(64, 8)
    linear = models.mlp([8, 6, 5, 3], activation="linear", seed=0)
    W, b = intro.collapsed_linear(linear)
    assert W.shape == (3, 8) and b.shape == (3,)
    assert torch.allclose(linear(x), x @ W.T + b, atol=1e-5)
    assert intro.collapse_gap(linear, x) < 1e-5
    assert intro.collapse_gap(models.mlp([8, 6, 5, 3], seed=0), x) > 0.2  # ReLU in between
    with pytest.raises(ValueError, match="no nn.Linear"):
        intro.collapsed_linear(torch.nn.Sequential(torch.nn.ReLU()))


def test_save_and_reload_reproduces_predictions(tmp_path):
    model, fresh = models.mlp([8, 4, 2], seed=0), models.mlp([8, 4, 2], seed=5)
    x = torch.randn(16, 8)
    assert not torch.equal(model(x), fresh(x))
    reloaded = intro.save_and_reload(model, tmp_path / "m.pt", fresh)
    assert torch.equal(model(x), reloaded(x)) and (tmp_path / "m.pt").exists()
    assert reloaded is fresh and all(
        torch.equal(a, b) for a, b in zip(model.parameters(), fresh.parameters(), strict=True)
    )


# --------------------------------------------------------------------------- exercises


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda t, p: np.sum((t - p) ** 2), "sum of squared errors"),
        (lambda t, p: np.sqrt(np.mean((t - p) ** 2)), "RMSE"),
        (lambda t, p: np.mean(np.abs(t - p)), "is off"),
        (lambda t, p: (t - p) ** 2, "shape"),
        (lambda t, p: None, "return"),
        (lambda t, p: float("nan"), "NaN"),
        (lambda t: 0.0, "raised TypeError"),
        ("not a function", "expected a function"),
    ],
)
def test_mse_wrong_answers_get_feedback(answer, phrase):
    assert_feedback("01.1", answer, phrase)


def test_least_squares_wrong_answers():
    def no_bias(X, y):
        return np.linalg.lstsq(X, y, rcond=None)[0], 0.0

    assert_feedback("01.2", no_bias, "column of ones")
    assert_feedback("01.2", lambda X, y: np.zeros(4), "pair")
    assert_feedback("01.2", lambda X, y: (np.zeros(2), 0.0), "shape")


def test_count_wrong_answers():
    def weights_only(sizes):
        return sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))

    assert_feedback("01.3", weights_only, "biases")
    assert_feedback("01.3", lambda sizes: 7, "expected")
    assert_feedback("01.3", lambda sizes: [1, 2], "single number")
