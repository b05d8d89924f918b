"""course_lib.gradient_descent (notebook 03)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conftest import assert_feedback
from matplotlib.figure import Figure
from torch import nn

from course_lib import gradient_descent as gd
from course_lib import models


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


def test_nesterov_steps_along_the_gradient_plus_the_new_velocity():
    grad = lambda w: np.array([1.0])  # noqa: E731 (constant gradient)
    path = gd.gradient_descent(grad, [0.0], lr=1.0, steps=2, momentum=0.5, nesterov=True)
    assert np.allclose(path[:, 0], [0.0, -1.5, -3.25])  # v = 1, 1.5; steps 1 + 0.5, 1 + 0.75
    q = gd.ILL_CONDITIONED
    heavy = q.loss(gd.gradient_descent(q.grad, gd.START, 0.1, 30, 0.9))[-1]
    nesterov = q.loss(gd.gradient_descent(q.grad, gd.START, 0.1, 30, 0.9, nesterov=True))[-1]
    assert nesterov < heavy / 10  # the look-ahead damps the overshoot


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
    assert race["tuned heavy ball"] < race["Nesterov 0.9"] < race["momentum 0.9"]
    assert race["gradient descent"] >= 3 * race["momentum 0.9"]
    assert race["gradient descent"] >= 8 * race["tuned heavy ball"]  # about sqrt(kappa) = 10
    assert gd.momentum_race(kappa=4)["gradient descent"] < race["gradient descent"]


@pytest.mark.parametrize(
    "lr, momentum, steps, nesterov, outcome",
    [
        (0.005, 0.0, 5, False, "converges"),  # far below 1/L: straight down, slowly
        (0.3, 0.0, 100, False, "diverges"),  # beyond 2/L = 0.2
        (0.3, 0.95, 5, True, "diverges"),
        (0.15, 0.0, 30, False, "oscillates"),  # between 1/L and 2/L: zig-zag
        (0.1, 0.95, 100, False, "oscillates"),  # heavy ball spirals in
        (0.1, 0.0, 30, False, "converges"),  # the default, 1/L
    ],
)
def test_trajectory_figure_outcome_at_the_slider_ends(lr, momentum, steps, nesterov, outcome):
    fig = gd.trajectory_figure(lr, momentum, steps, nesterov)
    assert isinstance(fig, Figure)
    assert f"lr = {lr:.3g} (limit 2/L = 0.2)" in fig.get_suptitle()
    assert f": {outcome}," in fig.get_suptitle()
    assert len(fig.axes[1].get_lines()[0].get_ydata()) == steps + 1  # the loss at every step


def test_minibatch_curves_and_figure():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(64, 3))
    y = X @ [1.0, -1.0, 0.5] + rng.normal(0, 0.1, 64)
    curves = gd.minibatch_curves(X, y, [64, 8, 1], lr=0.02, epochs=3, seed=0)
    assert [len(c) for c in curves.values()] == [4, 25, 193]
    assert curves[1][64] < curves[64][1]  # one epoch of SGD beats one batch step
    other = gd.minibatch_curves(X, y, [1], lr=0.02, epochs=3, seed=1)[1]
    assert not np.array_equal(other, curves[1])  # the seed shuffles the examples
    decayed = gd.minibatch_curves(X, y, [1], lr=0.02, epochs=3, seed=0, decay=True)[1]
    fig = gd.minibatch_figure(curves, 64, optimum=0.0, decayed=decayed)
    assert "lowest excess loss at a fixed lr is batch" in fig.axes[0].get_title()
    assert len(fig.axes[0].get_lines()) == 4


def test_linear_decay_matches_torch_and_removes_the_noise_floor():
    assert [gd.linear_decay(t, 4) for t in range(6)] == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    rng = np.random.default_rng(3)
    X = rng.normal(size=(100, 3))
    y = X @ [1.0, -1.0, 0.5] + rng.normal(0, 1.0, 100)
    A = np.hstack([X, np.ones((100, 1))])
    optimum = np.mean((A @ np.linalg.lstsq(A, y, rcond=None)[0] - y) ** 2)
    fixed = gd.minibatch_curves(X, y, [1], lr=0.05, epochs=10, seed=0)[1]
    decayed = gd.minibatch_curves(X, y, [1], lr=0.05, epochs=10, seed=0, decay=True)[1]
    assert np.allclose(fixed[:2], decayed[:2])  # the same first step
    excess_fixed, excess_decayed = (np.mean(c[-100:]) - optimum for c in (fixed, decayed))
    assert excess_fixed > 5 * excess_decayed


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.8, False), (0.8, True)])
def test_scratch_sgd_equals_torch_bitwise(momentum, nesterov):
    torch.manual_seed(0)
    model_a = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 2))
    model_b = copy.deepcopy(model_a)
    ours = gd.ScratchSGD(model_a.parameters(), lr=0.1, momentum=momentum, nesterov=nesterov)
    theirs = torch.optim.SGD(model_b.parameters(), lr=0.1, momentum=momentum, nesterov=nesterov)
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
    with pytest.raises(ValueError, match="Nesterov"):
        gd.ScratchSGD([w], lr=0.1, nesterov=True)


def test_line_losses_and_the_permuted_twin():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 6)).astype(np.float32), rng.integers(0, 3, 200)
    start, end = models.mlp([6, 5, 3], seed=0), models.mlp([6, 5, 3], seed=1)
    losses = gd.line_losses(start, end, x, y, [0.0, 0.5, 1.0])
    ce = lambda m: nn.functional.cross_entropy(m(torch.tensor(x)), torch.tensor(y)).item()  # noqa: E731
    assert losses[0] == pytest.approx(ce(start)) and losses[2] == pytest.approx(ce(end))
    assert losses[1] != pytest.approx(losses[0])
    twin = gd.permuted_hidden_units(end)
    assert torch.allclose(twin(torch.tensor(x)), end(torch.tensor(x)), atol=1e-6)
    assert not torch.equal(twin[0].weight, end[0].weight)
    assert torch.equal(twin[0].weight, end[0].weight.flip(0))
    assert torch.equal(twin[2].weight, end[2].weight.flip(1))
    fig = gd.line_figure([0.0, 1.0], [2.0, 1.0], [0.0, 0.5, 1.0], [0.1, 0.4, 0.1])
    assert "mid-way between the twins the loss is 0.40, at either end 0.10" in fig.get_suptitle()


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
    assert_feedback(id, answer, phrase)
