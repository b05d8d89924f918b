"""course_lib.regularization (notebook 04)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import assert_feedback
from matplotlib.figure import Figure
from sklearn.linear_model import ElasticNet, Lasso, Ridge

import course_lib.exercises.regularization as reg_ex
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
    other, _, _ = reg.make_sparse_regression(n=50, n_features=8, seed=4)
    assert not np.allclose(other, X)  # the seed draws other data
    Xc, _, _ = reg.make_sparse_regression(20_000, 3, (1.0,), correlation=0.6, seed=0)
    assert np.corrcoef(Xc.T)[0, 1:] == pytest.approx([0.6, 0.6], abs=0.02)
    assert Xc.std(axis=0) == pytest.approx([1, 1, 1], abs=0.02)


def test_diabetes_split_shapes_and_scaling():
    X_tr, X_te, y_tr, y_te, names = reg.diabetes_split(train_size=300, seed=0)
    assert X_tr.shape == (300, 10) and X_te.shape == (142, 10) and len(names) == 10
    assert np.allclose(X_tr.mean(0), 0, atol=1e-12) and np.allclose(X_tr.std(0), 1)
    raw = reg.diabetes_split(train_size=300, seed=0, standardized=False)[0]
    assert raw[:, names.index("age")].max() > 50  # years, not scaled
    assert not np.allclose(reg.diabetes_split(train_size=300, seed=1)[2], y_tr)


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
    far, _ = reg.ridge_path_svd(X, y, [1e7])  # alpha * w(alpha) -> Xc^T yc: nothing switched off
    Xc, yc = X - X.mean(0), y - y.mean()
    assert np.allclose(1e7 * far[0], Xc.T @ yc, rtol=1e-3)


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


def test_the_constrained_minimisers_are_the_penalised_solutions():
    X, y, _ = reg.make_sparse_regression(100, 2, (2.0, 0.3), correlation=0.6, seed=1)
    lasso = Lasso(alpha=1.0, tol=1e-14, max_iter=100_000).fit(X, y).coef_
    on_diamond = reg.l1_ball_minimiser(X, y, np.abs(lasso).sum())
    assert np.allclose(on_diamond, lasso, atol=1e-9) and on_diamond[1] == 0  # a corner
    ridge = Ridge(alpha=100.0).fit(X, y).coef_
    on_circle = reg.l2_ball_minimiser(X, y, np.linalg.norm(ridge))
    assert np.allclose(on_circle, ridge, atol=1e-6) and np.all(on_circle != 0)
    inner = reg.l1_ball_minimiser(X, y, 0.5 * np.abs(lasso).sum())
    assert np.abs(inner).sum() == pytest.approx(0.5 * np.abs(lasso).sum())  # on the boundary
    with pytest.raises(ValueError, match="two features"):
        reg.l1_ball_minimiser(np.ones((5, 3)) + np.eye(5, 3), np.arange(5.0), 1.0)
    fig = reg.ball_figure(X, y, on_diamond, on_circle)
    assert "corner" in fig.axes[0].get_title()


def test_map_weights_are_ridge_and_lasso(sparse):
    X, y, _ = sparse
    gauss = reg.map_weights(X, y, sigma2=2.0, prior="gaussian", scale=0.5)
    assert np.allclose(gauss, Ridge(alpha=2.0 / 0.25).fit(X, y).coef_, atol=1e-6)
    laplace = reg.map_weights(X, y, sigma2=1.0, prior="laplace", scale=0.02)
    lasso = Lasso(alpha=1.0 / (len(y) * 0.02), tol=1e-14, max_iter=100_000).fit(X, y).coef_
    assert np.allclose(laplace, lasso, atol=1e-6)
    assert np.array_equal(laplace == 0, lasso == 0) and np.sum(laplace == 0) >= 10
    with pytest.raises(ValueError, match="prior"):
        reg.map_weights(X, y, 1.0, prior="cauchy")


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
    enet = ElasticNet(alpha=paths["alphas"][3], l1_ratio=0.5, tol=1e-10, max_iter=100_000)
    assert np.allclose(paths["elasticnet"][3], enet.fit(X_tr, y_tr).coef_, atol=1e-5)


def test_coefficients_figure_counts_zeros():
    fig = reg.coefficients_figure([1.0, 0.0, 0.0], {"a": [0.9, 0.0, 0.0], "b": [1, 0.1, 0.2]}, "t")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "a (2 exact zeros)" in labels and "b (0 exact zeros)" in labels
    assert fig.axes[0].get_title() == "t"


@pytest.mark.parametrize("penalty", ["lasso", "ridge", "elasticnet"])
@pytest.mark.parametrize("alpha", [1e-3, 1e4])
def test_path_figure_at_the_slider_ends(penalty, alpha):
    title = reg.path_figure(alpha, penalty).get_suptitle()
    assert title.startswith(f"{penalty}, alpha={alpha:.3g}")
    r2 = float(title.split("test R\u00b2=")[1])
    if alpha == 1e-3:  # almost least squares: every weight, a useful fit
        assert "10 of 10 coefficients non-zero" in title and r2 > 0.35
    elif penalty == "ridge":  # shrunk hard, yet nothing switched off
        assert "10 of 10 coefficients non-zero" in title and r2 < 0.35
    else:  # beyond alpha_max: everything off, the mean predicts as well as anything
        assert "0 of 10 coefficients non-zero" in title and r2 < 0.01


def test_path_figure_rejects_unknown_penalty():
    with pytest.raises(ValueError):
        reg.path_figure(1.0, "l3")


def test_polynomial_design_shapes():
    rng = np.random.default_rng(0)
    A, B = reg.polynomial_design(rng.normal(size=(30, 4)), rng.normal(size=(7, 4)), degree=2)
    assert A.shape == (30, 14) and B.shape == (7, 14)
    assert np.allclose(A.mean(0), 0, atol=1e-12) and np.allclose(A.std(0), 1)


def test_overfit_curve_gap_closes_and_alpha_is_chosen_on_the_training_set():
    alphas = np.logspace(-4, 5, 19)
    curve = reg.overfit_curve(alphas, degree=3, train_size=150, splits=2, seed=0)
    assert curve["n_features"] == 285 and curve["cv_alphas"].shape == (2,)
    assert curve["train_mse"][0] < 1 and curve["test_mse"][0] > 20_000
    assert np.all(np.diff(curve["gap"]) < 0) and np.all(np.diff(curve["train_mse"]) > 0)
    assert np.allclose(curve["gap"], curve["test_mse"] - curve["train_mse"])
    assert np.all(np.isin(curve["cv_alphas"], alphas)) and 1 < curve["cv_alphas"].min()
    best = curve["test_mse"].min()  # the chosen alpha may be the best one: equal up to rounding
    assert best * (1 - 1e-9) <= curve["cv_test_mse"] < 1.1 * best
    assert 2500 < curve["linear_test_mse"] < curve["cv_test_mse"]
    other = reg.overfit_curve(alphas, degree=3, train_size=150, splits=2, seed=1)
    assert other["linear_test_mse"] != curve["linear_test_mse"]


def _overfit_title(alpha):
    title = reg.overfit_figure(alpha).axes[0].get_title()
    found = re.search(r"train MSE ([\d,.]+), test MSE ([\d,.]+), gap (-?[\d,.]+)", title)
    assert title.startswith(f"alpha={alpha:.3g}: ") and found, title
    return [float(v.replace(",", "")) for v in found.groups()]  # train, test, gap


def test_overfit_figure_at_the_slider_ends():
    train, test, gap = _overfit_title(1e-4)  # memorised: no training error, huge test error
    assert train < 1 and gap > 50_000
    var_y = reg.load_sklearn("diabetes").y.var()
    train, test, gap = _overfit_title(1e5)  # predicts about the mean: both near Var(y)
    assert abs(train / var_y - 1) < 0.15 and abs(test / var_y - 1) < 0.15
    labels = [t.get_text() for t in reg.overfit_figure(1.0).axes[0].get_legend().get_texts()]
    assert any(label.startswith("chosen on the training set") for label in labels)


# --------------------------------------------------------------------------- PyTorch


@pytest.mark.parametrize("optimizer, momentum", [("sgd", 0.0), ("sgd", 0.9), ("adam", 0.0)])
def test_weight_decay_equals_the_l2_penalty(optimizer, momentum):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 5)), rng.normal(size=40)
    res = reg.weight_decay_vs_penalty(X, y, optimizer, 0.2, 0.05, momentum, steps=10, seed=0)
    assert res["max_diff"] < 1e-13 and res["moved"] > 0.01
    with pytest.raises(ValueError, match="optimizer"):
        reg.weight_decay_vs_penalty(X, y, "rmsprop")


def test_adam_l2_is_adam_on_the_penalised_gradient():
    rng = np.random.default_rng(1)
    w0, grads = rng.normal(size=4), rng.normal(size=(6, 4))
    coupled, by_hand, plain = (w0.copy() for _ in range(3))
    states = [reg.AdamState.like(w0) for _ in range(3)]
    for g in grads:
        coupled = reg.adam_step(coupled, g, states[0], lr=0.1, weight_decay=0.5)
        by_hand = reg.adam_step(by_hand, g + 0.5 * by_hand, states[1], lr=0.1)
        plain = reg.adam_step(plain, g, states[2], lr=0.1)
    assert np.array_equal(coupled, by_hand)
    assert np.abs(coupled - plain).max() > 0.01  # the decay changes the path


def test_adamw_shrinks_by_lr_times_wd_before_the_adam_step():
    w0, g = np.array([2.0, -1.0]), np.array([0.3, 0.0])
    state, plain_state = reg.AdamState.like(w0), reg.AdamState.like(w0)
    w = reg.adam_step(w0, g, state, lr=0.1, weight_decay=0.5, decoupled=True)
    plain = reg.adam_step(w0 * (1 - 0.1 * 0.5), g, plain_state, lr=0.1)
    assert np.array_equal(w, plain) and np.array_equal(state.m, plain_state.m)


def test_adam_step_first_step_is_lr_times_sign():
    state = reg.AdamState.like(np.zeros(3))
    assert state.t == 0 and np.all(state.m == 0) and np.all(state.v == 0)
    w = reg.adam_step(np.ones(3), np.array([2.0, -0.5, 1e-3]), state, lr=0.1, eps=0.0)
    assert np.allclose(w, 1 - 0.1 * np.array([1.0, -1.0, 1.0]))  # m_hat/sqrt(v_hat) = sign(g)
    assert state.t == 1


@pytest.mark.parametrize("decoupled", [False, True])
def test_scratch_adam_matches_torch(decoupled):
    ours = reg.run_adam(steps=30, decoupled=decoupled)
    theirs = reg.run_adam(steps=30, decoupled=decoupled, scratch=False)
    assert np.abs(ours - theirs).max() < 1e-12
    other = reg.run_adam(steps=30, decoupled=not decoupled)
    assert np.abs(ours - other).max() > 1e-3
    assert np.abs(ours - reg.run_adam(steps=30, weight_decay=0.0)).max() > 1e-3


def test_dead_weight_trajectories():
    res = reg.dead_weight_trajectories(lambdas=(1e-3, 1e-1), steps=50, lr=0.01)
    assert len(res["adam_l2"][1e-3]) == 51
    assert np.abs(res["adam_l2"][1e-3] - res["adam_l2"][1e-1]).max() < 1e-4
    for lam in (1e-3, 1e-1):
        assert res["adamw"][lam][-1] == pytest.approx((1 - 0.01 * lam) ** 50, abs=1e-12)
    assert res["adam_l2"][1e-3][-1] < 0.6  # walks down by about lr per step whatever wd is
    fig = reg.dead_weight_figure(res)
    assert isinstance(fig, Figure) and "lr = 0.01" in fig.get_suptitle()


def test_adam_vs_adamw_mlp_and_its_figure():
    res = reg.adam_vs_adamw_mlp(
        weight_decay=0.1, lr=3e-3, steps=40, hidden=16, train_size=100, seed=0
    )
    for key in ("adam_l2", "adamw"):
        r = res[key]
        assert r["effective_decay"].shape == (16 * 10,) and np.isfinite(r["test_mse"])
    assert np.all(res["adamw"]["effective_decay"] == pytest.approx(3e-4))
    assert np.ptp(res["adam_l2"]["effective_decay"]) > 0
    assert res["adam_l2"]["effective_decay"].mean() > 10 * 3e-4  # small gradients: strong decay
    assert not np.allclose(res["adam_l2"]["weights"], res["adamw"]["weights"])
    fig = reg.effective_decay_figure(res)
    assert "percentile ratio" in fig.axes[0].get_title()


# --------------------------------------------------------------------------- exercises


def test_ridge_wrong_answers():
    def no_penalty(X, y, alpha):
        return np.linalg.lstsq(X, y, rcond=None)[0]

    def alpha_times_n(X, y, alpha):
        return np.linalg.solve(X.T @ X + alpha * len(y) * np.eye(X.shape[1]), X.T @ y)

    def inverse_of_wrong_gram(X, y, alpha):
        return np.linalg.solve(X.T @ X + alpha, X.T @ y)  # alpha added to every entry

    assert_feedback("04.1", no_penalty, "alpha is missing")
    assert_feedback("04.1", alpha_times_n, "scaled by n")
    assert_feedback("04.1", inverse_of_wrong_gram, "is off")


def test_soft_threshold_wrong_answers():
    def hard(z, t):
        return np.where(np.abs(z) > t, z, 0.0)

    def positive_only(z, t):
        return np.maximum(z - t, 0.0)

    assert_feedback("04.2", hard, "hard-thresholding")
    assert_feedback("04.2", positive_only, "keep the sign")
    assert_feedback("04.2", lambda z, t: np.clip(z, -t, t))


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

    assert_feedback("04.3", adam_l2, "Adam + L2")
    assert_feedback("04.3", no_decay, "weight decay is missing")
    assert_feedback("04.3", no_bias_correction, "bias correction")


def test_adamw_checker_reference_is_torch():
    expected = reg_ex._torch_adamw_reference()
    ours = reg_ex._solution_3(
        reg_ex._EX_W, reg_ex._EX_G, reg_ex._EX_M, reg_ex._EX_V, reg_ex._EX_STEP, **reg_ex._EX_KW
    )
    assert np.allclose(ours, expected, rtol=1e-12, atol=1e-15)
