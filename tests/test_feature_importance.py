"""course_lib.feature_importance (notebook 10)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_feedback
from matplotlib.figure import Figure
from sklearn.linear_model import LinearRegression
from sklearn.neural_network import MLPRegressor
from torch import nn

from course_lib import exercises
from course_lib import feature_importance as fi

# --------------------------------------------------------------------------- measures


def test_standardized_coefficients_are_unit_free():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)) * [1.0, 10.0, 0.1]
    y = X @ [1.0, 0.1, 10.0] + rng.normal(size=200) * 0.1
    w = LinearRegression().fit(X, y).coef_
    std = fi.standardized_coefficients(w, X)
    assert np.allclose(std, w * X.std(axis=0))
    assert np.allclose(std, [1.0, 1.0, 1.0], atol=0.05)
    X2 = X * [1000.0, 1.0, 1.0]  # a new unit for the first feature
    w2 = LinearRegression(tol=0).fit(X2, y).coef_
    assert w2[0] == pytest.approx(w[0] / 1000) and np.allclose(
        fi.standardized_coefficients(w2, X2), std
    )


def test_gradient_x_input_linear_and_baseline():
    layer = fi.linear_to_torch([2.0, -1.0, 0.5], intercept=3.0)
    assert layer.weight.dtype == torch.float64 and layer.bias.item() == 3.0
    X = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 4.0]])
    assert np.allclose(fi.gradient_x_input(layer, X), [[2.0, -2.0, 1.5], [0.0, 1.0, 2.0]])
    base = np.array([1.0, 1.0, 1.0])
    assert np.allclose(fi.gradient_x_input(layer, X, baseline=base), (X - base) * [2.0, -1.0, 0.5])


def test_gradient_x_input_nonlinear_matches_finite_differences():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1)).double()
    X = np.random.default_rng(1).normal(size=(4, 3))
    attr = fi.gradient_x_input(net, X)
    eps = 1e-6
    with torch.no_grad():
        f = lambda a: net(torch.from_numpy(a)).numpy().ravel()  # noqa: E731
        for j in range(3):
            d = np.zeros(3)
            d[j] = eps
            grad = (f(X + d) - f(X - d)) / (2 * eps)
            assert np.allclose(attr[:, j], grad * X[:, j], atol=1e-7)


def test_integrated_gradients():
    layer = fi.linear_to_torch([2.0, -1.0, 0.5], intercept=3.0)
    X = np.random.default_rng(2).normal(size=(6, 3)) + 4.0
    base = np.array([1.0, 2.0, 3.0])
    ig = fi.integrated_gradients(layer, X, baseline=base, steps=3)
    assert np.allclose(ig, fi.gradient_x_input(layer, X, baseline=base), atol=1e-12)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 1)).double()
    ig = fi.integrated_gradients(net, X, baseline=base, steps=200)
    with torch.no_grad():
        f = net(torch.from_numpy(X)).numpy().ravel()
        f0 = net(torch.from_numpy(base[None])).item()
    assert np.allclose(ig.sum(1), f - f0, atol=1e-2 * np.abs(f - f0).max())  # completeness
    gxi = fi.gradient_x_input(net, X, baseline=base)
    assert np.abs(gxi.sum(1) - (f - f0)).max() > 10 * np.abs(ig.sum(1) - (f - f0)).max()


def test_centred_gradient_x_input_is_the_linear_shap_value():
    """Exact Shapley values of a linear model, with the other features set to their
    training mean when absent, equal w_j (x_j - mean_j) (Lundberg and Lee 2017)."""
    from itertools import combinations
    from math import factorial

    w, b = np.array([2.0, -1.0, 0.5, 3.0]), 0.7
    layer = fi.linear_to_torch(w, b)
    rng = np.random.default_rng(5)
    X_train, x = rng.normal(size=(100, 4)) * [1, 2, 3, 4], rng.normal(size=(1, 4))
    mean = X_train.mean(0)

    def value(coalition):  # the prediction with the features outside the coalition at their mean
        point = mean.copy()
        point[list(coalition)] = x[0, list(coalition)]
        return float(point @ w + b)

    p = len(w)
    shapley = np.zeros(p)
    for j in range(p):
        others = [k for k in range(p) if k != j]
        for size in range(p):
            for s in combinations(others, size):
                weight = factorial(size) * factorial(p - size - 1) / factorial(p)
                shapley[j] += weight * (value((*s, j)) - value(s))
    assert np.allclose(fi.gradient_x_input(layer, x, baseline=mean)[0], shapley)


def test_gradient_x_input_rejects_multi_output():
    with pytest.raises(ValueError):
        fi.gradient_x_input(nn.Linear(3, 2).double(), np.zeros((2, 3)))


def test_mlp_to_torch_reproduces_predictions():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), rng.normal(size=60)
    mlp = MLPRegressor(hidden_layer_sizes=(6, 5), solver="lbfgs", max_iter=2000, random_state=0)
    mlp.fit(X, y)
    net = fi.mlp_to_torch(mlp)
    assert [type(m).__name__ for m in net] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    with torch.no_grad():
        out = net(torch.from_numpy(X)).numpy().ravel()
    assert np.abs(out - mlp.predict(X)).max() < 1e-12
    mlp.activation = "tanh"
    with pytest.raises(ValueError):
        fi.mlp_to_torch(mlp)


def test_permutation_scores_match_the_linear_formula():
    data = fi.make_scale_data(n=3000, seed=4)
    model = LinearRegression(tol=0).fit(data["X"], data["y"])
    scores = fi.permutation_scores(model, data["X"], data["y"], n_repeats=10, seed=0)
    theory = 2 * data["true_effect"] ** 2 / data["y"].var()
    assert np.allclose(scores["mean"], theory, rtol=0.15, atol=0.01)
    assert scores["std"].shape == (5,) and np.all(scores["std"] >= 0)


def test_ranking_and_spearman():
    assert list(fi.ranking([0.1, 3.0, -1.0, 2.0])) == [1, 3, 0, 2]
    assert list(fi.ranking([1.0, 1.0, 0.5])) == [0, 1, 2]  # stable on ties
    assert fi.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert fi.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)


def test_importance_table_on_scale_data():
    train, test = fi.make_scale_data(n=1000, seed=0), fi.make_scale_data(n=1000, seed=1)
    model = LinearRegression().fit(train["X"], train["y"])
    table = fi.importance_table(model, train["X"], test["X"], test["y"], n_repeats=3)
    assert set(table) == {
        "raw",
        "standardized",
        "permutation",
        "grad_x_input",
        "grad_x_input_centred",
    }
    truth = list(range(5))
    assert list(fi.ranking(table["standardized"])) == truth
    assert list(fi.ranking(table["permutation"])) == truth
    assert list(fi.ranking(table["grad_x_input_centred"])) == truth
    assert fi.ranking(table["raw"])[0] == 3 and fi.ranking(table["grad_x_input"])[0] == 1


def test_ranking_figure_titles():
    table = {"true": [3.0, 1.0, 2.0], "raw": [0.1, 5.0, 1.0]}
    fig = fi.ranking_figure(table, ["a", "b", "c"], title="T", reference="true")
    assert isinstance(fig, Figure) and fig.get_suptitle() == "T"
    titles = [ax.get_title() for ax in fig.axes]
    assert "\u03c1 vs true = -1.00" in titles[1] and "\u03c1" not in titles[0]


# --------------------------------------------------------------------------- synthetic data


def test_make_scale_data():
    d = fi.make_scale_data(n=4000, seed=0)
    assert d["X"].shape == (4000, 5) and d["names"][0] == "mass" and d["units"][0] == "g"
    assert np.allclose(d["X"].std(0), [1000, 1, 1, 0.01, 1], rtol=0.05)
    assert d["X"][:, 1].mean() == pytest.approx(293, abs=0.1)
    assert np.array_equal(d["true_effect"], [3.0, 2.0, 1.0, 0.5, 0.0])
    assert fi.make_scale_data(n=100, mass_std=1.0)["X"][:, 0].std() < 2
    assert [f[0] for f in fi.SCALE_FEATURES] == d["names"]


def test_scale_split_follows_the_seed():
    train, test = fi.scale_split(0)
    assert train["X"].shape == (1000, 5) and test["X"].shape == (2000, 5)
    assert not np.array_equal(train["X"][:5], test["X"][:5])
    other, _ = fi.scale_split(1)
    assert not np.array_equal(other["X"], train["X"])
    assert np.array_equal(fi.scale_split(1)[0]["X"], other["X"])


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("unit, raw_rank", [(1e-3, 5), (1.0, 5), (1e6, 1)])
def test_scale_figure_at_slider_extremes(unit, raw_rank, seed):
    """Mass (truly 1st) ranks last by raw coefficient in mg or g and 1st in tonnes, while
    the standardised coefficient and permutation importance rank it 1st in every unit."""
    fig = fi.scale_figure(unit, seed=seed)
    assert isinstance(fig, Figure)
    title = fig.get_suptitle()
    assert f"raw {raw_rank}, standardised 1, permutation 1" in title
    assert {1e-3: "mg", 1.0: "g", 1e6: "t"}[unit] in title.split(":")[0]


def test_make_correlated_data():
    d = fi.make_correlated_data(rho=0.9, n=20_000, seed=0)
    assert d["X"].shape == (20_000, 3) and d["names"][1] == "x2 (copy)"
    assert np.corrcoef(d["X"][:, 0], d["X"][:, 1])[0, 1] == pytest.approx(0.9, abs=0.01)
    assert np.allclose(d["X"].std(0), 1, atol=0.02)
    alone = fi.make_correlated_data(rho=0.9, n=50, with_copy=False)
    assert alone["X"].shape == (50, 2) and alone["names"] == ["x1", "x3"]
    for bad in (0.0, 1.0, -0.2):
        with pytest.raises(ValueError):
            fi.make_correlated_data(rho=bad)


def test_bootstrap_coefficients():
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    y = X @ [1.0, -2.0] + 5 + 0.1 * rng.normal(size=300)
    boot = fi.bootstrap_coefficients(X, y, n_boot=20, seed=1)
    assert boot.shape == (20, 2) and np.allclose(boot.mean(0), [1.0, -2.0], atol=0.02)
    assert np.all(boot.std(0) > 0.002)  # resampled with replacement: every refit differs
    assert len({tuple(np.round(row, 12)) for row in boot}) == 20
    ridge = fi.bootstrap_coefficients(X, y, n_boot=20, seed=1, alpha=1e4)
    assert np.all(np.abs(ridge.mean(0)) < 0.1)
    # each resample is scikit-learn's Ridge on those rows
    i = np.random.default_rng(1).integers(0, 300, 300)
    one = fi.bootstrap_coefficients(X, y, n_boot=1, seed=1, alpha=30.0)[0]
    assert np.allclose(one, Ridge(alpha=30.0).fit(X[i], y[i]).coef_)


def test_grouped_permutation_importance():
    d = fi.make_correlated_data(rho=0.99, n=2000, seed=3)
    model = LinearRegression().fit(d["X"], d["y"])
    X, y = d["X"], d["y"]
    groups = {"x1": [0], "x2": [1], "both": [0, 1], "x3": [2]}
    got = fi.grouped_permutation_importance(model, X, y, groups, n_repeats=10, seed=0)
    single = fi.permutation_scores(model, X, y, n_repeats=10, seed=0)["mean"]
    assert got["x1"] == pytest.approx(single[0], rel=0.1)
    assert got["x3"] == pytest.approx(single[2], rel=0.1)
    # shuffled together, the two sensors lose what z brings: far more than each alone,
    # and more than the two single-column importances added up
    assert got["both"] > 1.3 * (got["x1"] + got["x2"])
    alone = LinearRegression().fit(X[:, [0, 2]], y)
    z_alone = fi.permutation_scores(alone, X[:, [0, 2]], y, n_repeats=10, seed=0)["mean"][0]
    assert got["both"] == pytest.approx(z_alone, rel=0.1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_correlated_experiment_shows_the_pitfall(seed):
    res = fi.correlated_experiment(rho=0.99, n=500, n_boot=40, n_repeats=5, seed=seed)
    alone, both = res["alone"], res["with_copy"]
    assert abs(alone["r2"] - both["r2"]) < 0.02
    assert (both["perm"][0] + both["perm"][1]) < 0.75 * alone["perm"][0]
    assert both["boot"][:, 0].std() > 4 * alone["boot"][:, 0].std()
    assert abs(both["grouped"] / alone["perm"][0] - 1) < 0.1
    # ridge: the split varies far less over resamples than least squares' split
    assert res["ridge_boot"][:, 0].std() < 0.5 * both["boot"][:, 0].std()
    ridge_gap = abs(res["ridge_coef"][0] - res["ridge_coef"][1])
    assert ridge_gap < abs(both["coef"][0] - both["coef"][1]) + 0.05
    # theory for an even split: x1 keeps 1 / (1 + rho)^2 of its importance (0.59 at rho=0.3)
    weak = fi.correlated_experiment(rho=0.3, n=500, n_boot=10, n_repeats=5, seed=seed)
    assert weak["with_copy"]["perm"][0] / weak["alone"]["perm"][0] > 0.45


def _title_numbers(title: str) -> dict:
    """The numbers that correlation_figure's title states."""
    import re

    split = re.search(r"splits (-?[\d.]+) / (-?[\d.]+) \(bootstrap std of w1 ([\d.]+)\)", title)
    keeps = re.search(r"x1 keeps (\d+)% of its importance, x1 \+ x2 together (\d+)%", title)
    assert split and keeps, title
    w1, w2, sd = (float(g) for g in split.groups())
    return {"w1": w1, "w2": w2, "sd": sd, "keeps": int(keeps[1]), "together": int(keeps[2])}


@pytest.mark.parametrize("seed", [0, 1])
def test_correlation_figure_at_slider_extremes(seed):
    """At rho = 0.5 the split is pinned down and x1 keeps much of its importance; at
    0.999 the split wanders by about 1 while w1 + w2 stays near 2, x1 alone keeps little,
    and the pair shuffled together keeps what x1 had alone (at 0.5 the pair measures z
    better than x1 alone, so together they keep more)."""
    low = _title_numbers(fi.correlation_figure(0.5, seed=seed).get_suptitle())
    high = _title_numbers(fi.correlation_figure(0.999, seed=seed).get_suptitle())
    assert low["sd"] < 0.15 and 35 <= low["keeps"] <= 65 and low["together"] > 100
    assert high["sd"] > 0.5 and high["keeps"] < 40 and 85 <= high["together"] <= 115
    assert abs(high["w1"] + high["w2"] - 2) < 0.2
    fig = fi.correlation_figure(0.999, seed=seed)
    assert isinstance(fig, Figure) and len(fig.axes) == 2


# --------------------------------------------------------------------------- real data


def test_diabetes_importances():
    res = fi.diabetes_importances(train_size=300, seed=0, n_repeats=3)
    names = res["names"]
    assert len(names) == 10 and res["boot"].shape == (200, 10) and res["copy_error"] < 1e-12
    lin, mlp = res["linear"], res["mlp"]
    assert fi.spearman(lin["standardized"], lin["permutation"]) > 0.8
    assert fi.ranking(lin["raw"])[1] == names.index("sex")
    assert res["coef_std"][names.index("s1")] < -10 < 10 < res["coef_std"][names.index("s2")]
    assert set(fi.ranking(mlp["permutation"])[:3]) == {names.index(n) for n in ("bmi", "s5", "bp")}
    assert 0.3 < res["mlp_r2"] < 0.6 and 0.3 < res["linear_r2"] < 0.6
    assert res["single_r2"][names.index("bmi")] == pytest.approx(0.38, abs=0.03)
    assert res["S_test"].shape == (142, 10) and np.allclose(res["S_test"].mean(0), 0, atol=0.3)
    with torch.no_grad():
        net_out = res["net"](torch.from_numpy(res["S_test"])).numpy().ravel()
    assert np.corrcoef(net_out, res["S_test"][:, names.index("bmi")])[0, 1] > 0.3


def test_diabetes_follows_the_seed():
    a = fi.diabetes_importances(seed=1, n_repeats=2)
    b = fi.diabetes_importances(seed=2, n_repeats=2)
    assert not np.allclose(a["coef_std"], b["coef_std"])
    assert not np.allclose(a["S_test"][:3], b["S_test"][:3])


# --------------------------------------------------------------------------- exercises


def test_standardized_wrong_answers():
    assert_feedback("10.1", lambda c, X: c / X.std(axis=0), "divided")
    assert_feedback("10.1", lambda c, X: c * X.var(axis=0), "variance")
    assert_feedback("10.1", lambda c, X: c * X.mean(axis=0), "mean of the feature")
    assert_feedback("10.1", lambda c, X: c * X.std(axis=0, ddof=1), status="correct")


def test_grad_x_input_wrong_answers():
    def grad_only(model, x):
        x = x.clone().requires_grad_(True)
        model(x).sum().backward()
        return x.grad

    def absolute(model, x):
        return exercises.get("10.2").solution(model, x).abs()

    def averaged(model, x):
        return exercises.get("10.2").solution(model, x).mean(0)

    assert_feedback("10.2", grad_only, "gradient alone")
    assert_feedback("10.2", absolute, "keep the sign")
    assert_feedback("10.2", averaged, "one row of attributions")


def test_permutation_wrong_answers():
    solution = exercises.get("10.3").solution

    def reversed_sign(predict, X, y, j, perm):
        return -solution(predict, X, y, j, perm)

    def whole_rows(predict, X, y, j, perm):
        return np.mean((y - predict(X[perm])) ** 2) - np.mean((y - predict(X)) ** 2)

    def always_first_column(predict, X, y, j, perm):
        return solution(predict, X, y, 0, perm)

    assert_feedback("10.3", reversed_sign, "sign is reversed")
    assert_feedback("10.3", whole_rows, "every column")
    assert_feedback("10.3", always_first_column, "for feature j=1")
    assert_feedback("10.3", lambda *a: [1.0, 2.0], "single number")
