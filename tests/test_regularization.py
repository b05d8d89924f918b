"""course_lib.regularization (notebook 04)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure
from sklearn.linear_model import ElasticNet, Lasso, Ridge

import course_lib.exercises.regularization as reg_ex
from course_lib import exercises
from course_lib import regularization as reg

# --------------------------------------------------------------------------- data


def test_make_sparse_regression_has_known_irrelevant_features():
    X, y, coef = reg.make_sparse_regression(n=50, n_features=8, true_coef=(2.0, -1.0), seed=3)
    assert X.shape == (50, 8) and y.shape == (50,)
    assert np.array_equal(coef, [2.0, -1.0, 0, 0, 0, 0, 0, 0])
    X0, y0, _ = reg.make_sparse_regression(n=50, n_features=8, true_coef=(2.0, -1.0), noise=0.0)
    assert np.allclose(y0, X0 @ coef)
    with pytest.raises(ValueError):
        reg.make_sparse_regression(n_features=2, true_coef=(1.0, 2.0, 3.0))


def test_diabetes_split_shapes_and_scaling():
    X_tr, X_te, y_tr, y_te, names = reg.diabetes_split(train_size=300, seed=0)
    assert X_tr.shape == (300, 10) and X_te.shape == (142, 10) and len(names) == 10
    assert np.allclose(X_tr.mean(0), 0, atol=1e-12) and np.allclose(X_tr.std(0), 1)
    raw = reg.diabetes_split(train_size=300, seed=0, standardized=False)[0]
    assert raw[:, names.index("age")].max() > 50  # years, not scaled


# --------------------------------------------------------------------------- from scratch


@pytest.fixture(scope="module")
def sparse():
    return reg.make_sparse_regression(n=200, n_features=20, seed=0)


@pytest.mark.parametrize("alpha", [1e-3, 1.0, 1e3])
def test_ridge_closed_form_equals_sklearn(sparse, alpha):
    X, y, _ = sparse
    w, b = reg.ridge_closed_form(X, y, alpha)
    sk = Ridge(alpha=alpha).fit(X, y)
    assert np.allclose(w, sk.coef_, atol=1e-9) and b == pytest.approx(sk.intercept_, abs=1e-9)


def test_ridge_path_svd_equals_closed_form_and_shrinks(sparse):
    X, y, _ = sparse
    alphas = np.logspace(-2, 4, 7)
    coefs, intercepts = reg.ridge_path_svd(X, y, alphas)
    for a, w, b in zip(alphas, coefs, intercepts, strict=True):
        w_cf, b_cf = reg.ridge_closed_form(X, y, a)
        assert np.allclose(w, w_cf, atol=1e-10) and b == pytest.approx(b_cf, abs=1e-10)
    assert np.all(np.diff(np.linalg.norm(coefs, axis=1)) < 0)


def test_soft_threshold():
    z = np.array([-3.0, -0.5, 0.0, 0.2, 1.5])
    assert np.allclose(reg.soft_threshold(z, 0.5), [-2.5, 0.0, 0.0, 0.0, 1.0])
    assert np.array_equal(reg.soft_threshold(z, 0.0), z)


def test_lasso_alpha_max_is_the_switch_off_point(sparse):
    X, y, _ = sparse
    a_max = reg.lasso_alpha_max(X, y)
    assert np.all(Lasso(alpha=a_max * 1.0001, tol=1e-10).fit(X, y).coef_ == 0)
    assert np.sum(Lasso(alpha=a_max * 0.99, tol=1e-10).fit(X, y).coef_ != 0) == 1


def test_proximal_gradient_matches_lasso_and_elastic_net(sparse):
    X, y, coef = sparse
    w, b, steps = reg.proximal_gradient(X, y, 0.25)
    sk = Lasso(alpha=0.25, tol=1e-12, max_iter=100_000).fit(X, y)
    assert np.allclose(w, sk.coef_, atol=1e-8) and b == pytest.approx(sk.intercept_, abs=1e-8)
    assert 1 < steps < 100_000
    assert np.all(w[coef == 0] == 0) and np.all(w[coef != 0] != 0)
    w_en, _, _ = reg.proximal_gradient(X, y, 0.25, l1_ratio=0.5)
    sk_en = ElasticNet(alpha=0.25, l1_ratio=0.5, tol=1e-12, max_iter=100_000).fit(X, y)
    assert np.allclose(w_en, sk_en.coef_, atol=1e-8)
    w_l2, _, _ = reg.proximal_gradient(X, y, 0.3, l1_ratio=0.0)
    assert np.allclose(w_l2, reg.ridge_closed_form(X, y, 0.3 * len(y))[0], atol=1e-8)
    with pytest.raises(ValueError):
        reg.proximal_gradient(X, y, 0.1, l1_ratio=1.5)
    _, _, capped = reg.proximal_gradient(X, y, 0.25, max_steps=3)
    assert capped == 3


def test_subgradient_descent_gives_no_exact_zeros(sparse):
    X, y, coef = sparse
    w = reg.subgradient_descent(X, y, 0.25, steps=2000)
    assert np.all(w != 0)
    assert np.abs(w[coef == 0]).max() < 0.15 and np.all(np.abs(w[coef != 0]) > 0.5)
    w_small_lr = reg.subgradient_descent(X, y, 0.25, steps=10, lr=1e-6)
    assert np.abs(w_small_lr).max() < 1e-3  # barely moved from 0


# --------------------------------------------------------------------------- paths and figures


def test_regularization_paths():
    X_tr, _, y_tr, _, _ = reg.diabetes_split()
    alphas = np.logspace(-2, 3, 11)[::-1]  # unsorted input is sorted
    paths = reg.regularization_paths(X_tr, y_tr, alphas)
    assert np.all(np.diff(paths["alphas"]) > 0)
    for key in ("ridge", "lasso", "elasticnet"):
        assert paths[key].shape == (11, 10)
    lasso_small = Lasso(alpha=paths["alphas"][0], tol=1e-10, max_iter=100_000).fit(X_tr, y_tr)
    assert np.allclose(paths["lasso"][0], lasso_small.coef_, atol=1e-5)
    assert np.all(paths["lasso"][-1] == 0) and np.all(paths["ridge"] != 0)


def test_coefficients_figure_counts_zeros():
    fig = reg.coefficients_figure([1.0, 0.0, 0.0], {"a": [0.9, 0.0, 0.0], "b": [1, 0.1, 0.2]}, "t")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "a (2 exact zeros)" in labels and "b (0 exact zeros)" in labels
    assert fig.axes[0].get_title() == "t"


@pytest.mark.parametrize("penalty", ["lasso", "ridge", "elasticnet"])
@pytest.mark.parametrize("alpha", [1e-3, 1e4])
def test_path_figure_at_slider_extremes(penalty, alpha):
    fig = reg.path_figure(alpha, penalty)
    assert isinstance(fig, Figure)
    title = fig._suptitle.get_text()
    assert title.startswith(f"{penalty}, alpha={alpha:.3g}") and "test R" in title
    if penalty != "ridge" and alpha == 1e4:
        assert "0 of 10 coefficients non-zero" in title
    if alpha == 1e-3 or penalty == "ridge":
        assert "10 of 10 coefficients non-zero" in title


def test_path_figure_rejects_unknown_penalty():
    with pytest.raises(ValueError):
        reg.path_figure(1.0, "l3")


def test_polynomial_design_shapes():
    rng = np.random.default_rng(0)
    A, B = reg.polynomial_design(rng.normal(size=(30, 4)), rng.normal(size=(7, 4)), degree=2)
    assert A.shape == (30, 14) and B.shape == (7, 14)
    assert np.allclose(A.mean(0), 0, atol=1e-12) and np.allclose(A.std(0), 1)


def test_overfit_curve_gap_closes():
    curve = reg.overfit_curve(np.logspace(-4, 4, 9), degree=3, train_size=150, splits=2)
    assert curve["n_features"] == 285 and curve["train_size"] == 150
    assert curve["train_mse"][0] < 1 and curve["test_mse"][0] > 20_000
    assert np.all(np.diff(curve["gap"]) < 0) and np.all(np.diff(curve["train_mse"]) > 0)
    assert np.allclose(curve["gap"], curve["test_mse"] - curve["train_mse"])


@pytest.mark.parametrize("alpha", [1e-4, 1.0, 1e5])
def test_overfit_figure_at_slider_extremes(alpha):
    fig = reg.overfit_figure(alpha)
    assert isinstance(fig, Figure)
    title = fig.axes[0].get_title()
    assert title.startswith(f"alpha={alpha:.3g}: train MSE") and "gap" in title
    gap = float(title.split("gap ")[1].replace(",", ""))
    assert (gap > 50_000) if alpha == 1e-4 else (gap < 25_000)


# --------------------------------------------------------------------------- PyTorch


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_weight_decay_equals_l2_penalty(momentum):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 5)), rng.normal(size=40)
    res = reg.sgd_weight_decay_vs_penalty(X, y, weight_decay=0.2, momentum=momentum, steps=10)
    assert res["max_diff"] < 1e-13 and res["moved"] > 0.01
    assert len(res["weight_decay"]) == len(res["penalty"]) == 4


def test_adam_step_first_step_is_lr_times_sign():
    state = reg.AdamState(np.zeros(3))
    assert state.t == 0 and np.all(state.m == 0) and np.all(state.v == 0)
    w = reg.adam_step(np.ones(3), np.array([2.0, -0.5, 1e-3]), state, lr=0.1, eps=0.0)
    assert np.allclose(w, 1 - 0.1 * np.array([1.0, -1.0, 1.0]))  # m_hat/sqrt(v_hat) = sign(g)
    assert state.t == 1


def test_adam_step_decoupled_vs_coupled_on_a_dead_weight():
    for decoupled in (False, True):
        state = reg.AdamState(np.ones(1))
        w = reg.adam_step(np.ones(1), np.zeros(1), state, lr=0.1, weight_decay=0.5,
                          decoupled=decoupled)  # fmt: skip
        expected = 1 - 0.1 * 0.5 if decoupled else 1 - 0.1  # AdamW: lr*wd; Adam: lr*sign
        assert w[0] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("decoupled", [False, True])
def test_scratch_adam_matches_torch(decoupled):
    ours = reg.run_adam_scratch(steps=30, decoupled=decoupled)
    theirs = reg.run_adam_torch(steps=30, decoupled=decoupled)
    assert np.abs(ours - theirs).max() < 1e-12
    other = reg.run_adam_scratch(steps=30, decoupled=not decoupled)
    assert np.abs(ours - other).max() > 1e-3


def test_dead_weight_trajectories():
    res = reg.dead_weight_trajectories(lambdas=(1e-3, 1e-1), steps=50, lr=0.01)
    assert len(res["adam_l2"][1e-3]) == 51
    assert np.abs(res["adam_l2"][1e-3] - res["adam_l2"][1e-1]).max() < 1e-4
    for lam in (1e-3, 1e-1):
        assert res["adamw"][lam][-1] == pytest.approx((1 - 0.01 * lam) ** 50, abs=1e-12)
    fig = reg.dead_weight_figure(res)
    assert isinstance(fig, Figure) and "lr = 0.01" in fig._suptitle.get_text()


def test_adam_vs_adamw_mlp_and_its_figure():
    res = reg.adam_vs_adamw_mlp(weight_decay=0.1, lr=3e-3, steps=40, hidden=16, train_size=100)
    for key in ("adam_l2", "adamw"):
        r = res[key]
        assert r["effective_decay"].shape == (16 * 10,) and np.isfinite(r["test_mse"])
    assert np.all(res["adamw"]["effective_decay"] == pytest.approx(3e-4))
    assert np.ptp(res["adam_l2"]["effective_decay"]) > 0
    assert not np.allclose(res["adam_l2"]["weights"], res["adamw"]["weights"])
    fig = reg.effective_decay_figure(res)
    assert "percentile ratio" in fig.axes[0].get_title()


# --------------------------------------------------------------------------- exercises


def _ev(id, answer):
    return exercises.evaluate(id, answer)


def test_ridge_wrong_answers():
    def no_penalty(X, y, alpha):
        return np.linalg.lstsq(X, y, rcond=None)[0]

    def alpha_times_n(X, y, alpha):
        return np.linalg.solve(X.T @ X + alpha * len(y) * np.eye(X.shape[1]), X.T @ y)

    def inverse_of_wrong_gram(X, y, alpha):
        return np.linalg.solve(X.T @ X + alpha, X.T @ y)  # alpha added to every entry

    assert "alpha is missing" in _ev("04.1", no_penalty).message
    assert "scaled by n" in _ev("04.1", alpha_times_n).message
    assert "is off" in _ev("04.1", inverse_of_wrong_gram).message


def test_soft_threshold_wrong_answers():
    def hard(z, t):
        return np.where(np.abs(z) > t, z, 0.0)

    def positive_only(z, t):
        return np.maximum(z - t, 0.0)

    assert "hard-thresholding" in _ev("04.2", hard).message
    assert "keep the sign" in _ev("04.2", positive_only).message
    assert _ev("04.2", lambda z, t: np.clip(z, -t, t)).status == "wrong"


def test_adamw_wrong_answers():
    def adam_l2(w, g, m, v, t, lr, beta1, beta2, eps, weight_decay):
        g = g + weight_decay * w
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        return w - lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)

    def no_decay(w, g, m, v, t, lr, beta1, beta2, eps, weight_decay):
        return adam_l2(w, g, m, v, t, lr, beta1, beta2, eps, 0.0)

    def no_bias_correction(w, g, m, v, t, lr, beta1, beta2, eps, weight_decay):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        return w * (1 - lr * weight_decay) - lr * m / (np.sqrt(v) + eps)

    assert "Adam + L2" in _ev("04.3", adam_l2).message
    assert "weight decay is missing" in _ev("04.3", no_decay).message
    assert "bias correction" in _ev("04.3", no_bias_correction).message


def test_adamw_checker_reference_is_torch():
    expected = reg_ex._torch_adamw_reference()
    ours = reg_ex._solution_3(
        reg_ex._EX_W, reg_ex._EX_G, reg_ex._EX_M, reg_ex._EX_V, reg_ex._EX_STEP, **reg_ex._EX_KW
    )
    assert np.allclose(ours, expected, rtol=1e-12, atol=1e-15)
