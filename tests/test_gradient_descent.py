"""course_lib.gradient_descent (notebook 03)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from course_lib import exercises
from course_lib import gradient_descent as gd


def test_quadratic_loss_grad_and_curvatures():
    q = gd.Quadratic(np.diag([2.0, 8.0]), np.array([1.0, -1.0]))
    assert q.loss(q.w_star) == 0 and q.loss([2.0, -1.0]) == pytest.approx(1.0)
    assert np.allclose(q.grad([2.0, 0.0]), [2.0, 8.0])
    assert (q.mu, q.L) == pytest.approx((2.0, 8.0))
    assert q.loss(np.zeros((3, 2))).shape == (3,)
    assert gd.ILL_CONDITIONED.L == pytest.approx(10.0)


def test_stability_limit_is_sharp():
    q = gd.ILL_CONDITIONED
    limit = gd.stability_limit(q.H)
    assert limit == pytest.approx(0.2)
    for factor, outcome in ((0.99, "converges"), (1.01, "diverges")):
        path = gd.gradient_descent(q.grad, gd.START, factor * limit, 300)
        assert gd.classify(q.loss(path)) == outcome


def test_gradient_descent_matches_the_closed_form_contraction():
    q = gd.Quadratic(np.diag([1.0, 4.0]), np.zeros(2))
    path = gd.gradient_descent(q.grad, [1.0, 1.0], lr=0.1, steps=5)
    assert path.shape == (6, 2)
    assert np.allclose(
        path[-1], [0.9**5, 0.6**5]
    )  # each coordinate times (1 - lr * lambda) per step


def test_momentum_is_the_heavy_ball():
    grad = lambda w: np.array([1.0])  # noqa: E731 (constant gradient)
    path = gd.gradient_descent(grad, [0.0], lr=1.0, steps=3, momentum=0.5)
    assert np.allclose(path[:, 0], [0.0, -1.0, -2.5, -4.25])  # velocities 1, 1.5, 1.75


def test_classify_and_steps_to_reach():
    assert gd.classify([4, 3, 2, 1]) == "converges"
    assert gd.classify([4, 1, 2, 0.5]) == "oscillates"
    assert gd.classify([1, 2, 4]) == "diverges" and gd.classify([1, np.nan]) == "diverges"
    assert gd.steps_to_reach([5, 3, 0.5, 0.1], 1.0) == 2 and gd.steps_to_reach([5, 3], 1.0) is None


def test_mse_hessian_matches_autograd():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    y = rng.normal(size=20)

    def loss(theta):
        A = torch.cat([torch.as_tensor(X), torch.ones(20, 1, dtype=torch.float64)], 1)
        return ((A @ theta - torch.as_tensor(y)) ** 2).mean()

    H = torch.autograd.functional.hessian(loss, torch.zeros(4, dtype=torch.float64)).numpy()
    assert np.allclose(gd.mse_hessian(X), H)


def test_regression_losses_converge_and_diverge():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100, 2))
    y = X @ [1.0, 2.0] + 0.5
    limit = gd.stability_limit(gd.mse_hessian(X))
    below = gd.regression_losses(X, y, 0.9 * limit, 300)
    above = gd.regression_losses(X, y, 1.1 * limit, 300)
    assert below.shape == (301,) and below[-1] < 1e-10 and gd.classify(above) == "diverges"


def test_momentum_race_ordering():
    race = gd.momentum_race(kappa=100)
    assert race["tuned heavy ball"] < race["momentum 0.9"] < race["gradient descent"]
    assert gd.momentum_race(kappa=4)["gradient descent"] < race["gradient descent"]


@pytest.mark.parametrize(
    "lr, momentum, steps, outcome",
    [
        (0.005, 0.0, 5, "converges"),
        (0.3, 0.0, 100, "diverges"),
        (0.15, 0.0, 30, "oscillates"),
        (0.1, 0.95, 100, "oscillates"),
    ],
)
def test_trajectory_figure_at_slider_extremes(lr, momentum, steps, outcome):
    fig = gd.trajectory_figure(lr, momentum, steps)
    assert isinstance(fig, Figure)
    assert f"lr = {lr:.3g}" in fig.get_suptitle() and f": {outcome}," in fig.get_suptitle()


def test_minibatch_curves_and_figure():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(64, 3))
    y = X @ [1.0, -1.0, 0.5] + rng.normal(0, 0.1, 64)
    curves = gd.minibatch_curves(X, y, [64, 8, 1], lr=0.02, epochs=3)
    assert [len(c) for c in curves.values()] == [4, 25, 193]
    assert curves[1][64] < curves[64][1]  # one epoch of SGD beats one batch step
    fig = gd.minibatch_figure(curves, 64, optimum=0.0)
    assert "lowest excess loss is batch" in fig.axes[0].get_title()


def test_scratch_sgd_equals_torch_bitwise():
    torch.manual_seed(0)
    model_a = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 2))
    model_b = copy.deepcopy(model_a)
    ours = gd.ScratchSGD(model_a.parameters(), lr=0.1, momentum=0.8)
    theirs = torch.optim.SGD(model_b.parameters(), lr=0.1, momentum=0.8)
    x, y = torch.randn(32, 5), torch.randint(0, 2, (32,))
    for _ in range(5):
        for model, opt in ((model_a, ours), (model_b, theirs)):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    assert all(
        torch.equal(a, b) for a, b in zip(model_a.parameters(), model_b.parameters(), strict=True)
    )


def test_scratch_sgd_without_momentum_and_bad_arguments():
    w = nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = gd.ScratchSGD([w], lr=0.5)
    (w**2).sum().backward()
    opt.step()
    assert torch.allclose(w, torch.tensor([0.0, 0.0]))
    opt.zero_grad()
    assert w.grad is None
    opt.step()  # no gradient: nothing happens
    with pytest.raises(ValueError):
        gd.ScratchSGD([w], lr=0)
    with pytest.raises(ValueError):
        gd.ScratchSGD([w], lr=0.1, momentum=1.0)


# --------------------------------------------------------------------------- exercises


@pytest.mark.parametrize(
    "id, answer, phrase",
    [
        ("03.1", lambda w, g, lr: w + lr * g, "uphill"),
        ("03.1", lambda w, g, lr: w - g, "is off"),
        ("03.1", lambda w, g, lr: (w - lr * g)[:2], "shape"),
        ("03.2", lambda w, v, g, lr, m: (w - lr * v, m * v + g), "old velocity"),
        ("03.2", lambda w, v, g, lr, m: (w - lr * g, g), "velocity is momentum"),
        ("03.2", lambda w, v, g, lr, m: w, "pair"),
        ("03.3", lambda H: 1 / np.linalg.eigvalsh(H).max(), "1/L"),
        ("03.3", lambda H: 2 / np.linalg.eigvalsh(H).min(), "smallest eigenvalue"),
        ("03.3", lambda H: np.trace(H), "is off"),
        ("03.3", lambda H: H @ "x", "raised"),
    ],
)
def test_wrong_answers_get_hints(id, answer, phrase):
    result = exercises.evaluate(id, answer)
    assert result.status == "wrong" and phrase in result.message and "Hint:" in result.message
