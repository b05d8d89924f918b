"""course_lib.intro (notebook 01)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from sklearn.linear_model import LinearRegression

from course_lib import exercises, intro, models


def test_diabetes_bmi_is_the_raw_feature():
    x, y = intro.diabetes_bmi()
    assert x.shape == y.shape == (442,)
    assert 18 <= x.min() and x.max() <= 43 and 25 <= y.min() and y.max() <= 346


def test_predict_and_mse():
    assert np.allclose(intro.predict([1.0, 2.0], 3.0, 1.0), [4.0, 7.0])
    assert intro.mse([1, 2, 3], [1, 2, 5]) == pytest.approx(4 / 3)
    assert intro.mse([0.0], [0.0]) == 0.0


@pytest.mark.parametrize("w, b", [(-5.0, -300.0), (20.0, 300.0), (5.0, 20.0)])
def test_neuron_figure_at_slider_extremes(w, b):
    fig = intro.neuron_figure(w, b)
    x, y = intro.diabetes_bmi()
    assert isinstance(fig, Figure)
    title = fig.axes[0].get_title()
    assert f"MSE = {intro.mse(y, intro.predict(x, w, b)):,.0f}" in title


def test_closed_form_matches_sklearn():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 4))
    y = X @ [1.0, -2.0, 0.0, 3.0] + 0.5 + rng.normal(0, 0.1, 50)
    (w, b), loss = intro.closed_form_least_squares(X, y)
    sk = LinearRegression().fit(X, y)
    assert np.allclose(w, sk.coef_) and b == pytest.approx(sk.intercept_)
    assert loss == pytest.approx(np.mean((sk.predict(X) - y) ** 2))


def test_fit_linear_gd_converges_on_a_well_conditioned_problem():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    y = X @ [2.0, -1.0, 0.5] + 3.0
    layer, losses = intro.fit_linear_gd(X, y, steps=500, lr=0.1)
    assert losses[-1] < 1e-8 < losses[0]
    assert np.allclose(layer.weight.detach().numpy().ravel(), [2.0, -1.0, 0.5], atol=1e-4)


def test_parameter_table_lists_every_tensor_of_the_state():
    table = intro.parameter_table(models.mlp([64, 32, 10]))
    assert table == [
        ("0.weight", (32, 64), 2048), ("0.bias", (32,), 32),
        ("2.weight", (10, 32), 320), ("2.bias", (10,), 10),
    ]  # fmt: skip
    assert sum(n for *_, n in table) == 2410


def test_save_and_reload_reproduces_predictions(tmp_path):
    model, fresh = models.mlp([8, 4, 2], seed=0), models.mlp([8, 4, 2], seed=5)
    x = torch.randn(16, 8)
    assert not torch.equal(model(x), fresh(x))
    reloaded = intro.save_and_reload(model, tmp_path / "m.pt", fresh)
    assert torch.equal(model(x), reloaded(x)) and (tmp_path / "m.pt").exists()


# --------------------------------------------------------------------------- exercises


def _status(id, answer):
    return exercises.evaluate(id, answer)


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
    result = _status("01.1", answer)
    assert result.status == "wrong" and phrase in result.message and "Hint:" in result.message


def test_least_squares_wrong_answers():
    def no_bias(X, y):
        return np.linalg.lstsq(X, y, rcond=None)[0], 0.0

    assert "column of ones" in _status("01.2", no_bias).message
    assert "pair" in _status("01.2", lambda X, y: np.zeros(4)).message
    result = _status("01.2", lambda X, y: (np.zeros(2), 0.0))
    assert result.status == "wrong" and "shape" in result.message


def test_count_wrong_answers():
    def weights_only(sizes):
        return sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))

    assert "biases" in _status("01.3", weights_only).message
    assert "expected" in _status("01.3", lambda sizes: 7).message
    assert "single number" in _status("01.3", lambda sizes: [1, 2]).message
