"""course_lib.siamese (notebook 09)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import assert_feedback
from matplotlib.figure import Figure

import course_lib.exercises.siamese as sia_ex
from course_lib import exercises
from course_lib import siamese as sia


def _images(n=16, seed=0):
    return torch.rand(n, 28, 28, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- model and sharing


def test_embedding_net_shape_and_size():
    net = sia.embedding_net(dim=8)
    assert net(_images(5)).shape == (5, 8)
    assert sum(p.numel() for p in sia.embedding_net(32).parameters()) == 21_952
    assert torch.equal(sia.embedding_net(seed=3)[1].weight, sia.embedding_net(seed=3)[1].weight)


def test_siamese_branches_share_every_parameter():
    model = sia.SiameseNet(sia.embedding_net(dim=8))
    report = sia.shared_parameter_report(model)
    assert report["same_objects"] and report["same_storage"]
    assert report["n_tensors_model"] == report["n_tensors_left"] == 8
    assert report["n_weights_model"] == report["n_weights"]
    z1, z2 = model(_images(4), _images(4))
    assert torch.allclose(z1, z2)  # same weights, same inputs, same embeddings
    with torch.no_grad():
        model.left[1].weight.add_(1.0)  # changing one branch changes the other
    assert torch.equal(model.left[1].weight, model.right[1].weight)


def test_report_detects_copies():
    import copy

    model = sia.SiameseNet(sia.embedding_net(dim=8))
    model.right = copy.deepcopy(model.left)
    report = sia.shared_parameter_report(model)
    assert not report["same_objects"] and not report["same_storage"]
    assert report["n_weights_model"] == 2 * report["n_weights"]


def test_pair_distances_and_contrastive_loss():
    z1 = torch.tensor([[0.0, 0.0], [0.0, 0.0], [3.0, 4.0]])
    z2 = torch.tensor([[3.0, 4.0], [0.0, 0.3], [0.0, 0.0]])
    d = sia.pair_distances(z1, z2)
    assert torch.allclose(d, torch.tensor([5.0, 0.3, 5.0]))
    same = torch.tensor([1.0, 0.0, 0.0])
    # similar pair: 25/2; dissimilar inside the margin: (1 - 0.3)^2 / 2; beyond: 0
    expected = (25 / 2 + 0.7**2 / 2 + 0.0) / 3
    assert sia.contrastive_loss(z1, z2, same, margin=1.0).item() == pytest.approx(expected)
    assert sia.pair_distances(z1[:1], z1[:1]).item() == pytest.approx(1e-6)  # no NaN gradient at 0


def test_two_copy_gradients_sum_to_the_shared_gradient():
    model = sia.SiameseNet(sia.embedding_net(dim=8))
    x1, x2 = _images(12, 1), _images(12, 2)
    same = torch.tensor([1.0, 0.0] * 6)
    marker = torch.full_like(model.left[1].weight, 7.0)
    model.left[1].weight.grad = marker.clone()
    grads = sia.two_copy_gradients(model, x1, x2, same)
    for name in grads["shared"]:
        assert torch.allclose(grads["shared"][name], grads["copy_sum"][name], rtol=1e-4, atol=1e-7)
    assert grads["shared"]["10.bias"].abs().max().item() == 0.0
    assert grads["copy_left"]["10.bias"].norm() > 0
    assert torch.equal(model.left[1].weight.grad, marker)  # caller's gradients restored


# --------------------------------------------------------------------------- pairs and data


def test_make_pairs_is_balanced_and_correct():
    labels = np.repeat(np.arange(5), 40)
    i, j, same = sia.make_pairs(labels, 2000, seed=0)
    assert len(i) == len(j) == len(same) == 2000
    assert 0.45 < same.mean().item() < 0.55
    assert np.array_equal(labels[i] == labels[j], same.numpy().astype(bool))
    assert not torch.any((i == j) & (same == 1))
    assert torch.equal(sia.make_pairs(labels, 50, seed=1)[1], sia.make_pairs(labels, 50, seed=1)[1])
    with pytest.raises(ValueError):
        sia.make_pairs(np.zeros(10), 5)


def test_make_pairs_with_a_singleton_class():
    labels = np.array([0, 1, 1, 1])
    i, j, same = sia.make_pairs(labels, 200, seed=0)
    assert np.array_equal(labels[i] == labels[j], same.numpy().astype(bool))
    assert not torch.any((i == j) & (same == 1))


def test_batch_pairs():
    i, j, same = sia.batch_pairs(torch.tensor([0, 1, 0, 2]))
    assert len(i) == 6 and torch.all(i < j)
    assert same.tolist() == [0.0, 1.0, 0.0, 0.0, 0.0, 0.0]


def test_random_shift_moves_content():
    x = torch.zeros(50, 28, 28)
    x[:, 14, 14] = 1.0
    shifted = sia.random_shift(x, 2, torch.Generator().manual_seed(0))
    assert shifted.shape == x.shape and torch.allclose(shifted.sum((1, 2)), torch.ones(50))
    pos = shifted.flatten(1).argmax(1)
    rows, cols = (pos // 28).tolist(), (pos % 28).tolist()
    assert set(rows) <= set(range(12, 17)) and set(cols) <= set(range(12, 17))
    assert len(set(zip(rows, cols, strict=True))) > 5  # many different offsets
    assert torch.equal(sia.random_shift(x, 0), x)


def test_digit_split(real_data):
    split = sia.digit_split(n_train=500, seed=0)
    assert not torch.equal(split["train"][1], sia.digit_split(n_train=500, seed=1)["train"][1])
    x, y = split["train"]
    assert x.shape == (500, 28, 28) and set(y.unique().tolist()) <= set(sia.SEEN)
    assert set(split["test_unseen"][1].unique().tolist()) == set(sia.UNSEEN)
    assert set(split["test_seen"][1].unique().tolist()) == set(sia.SEEN)
    assert 0.0 <= x.min() and x.max() <= 1.0


# --------------------------------------------------------------------------- training and evaluation


def _prototypes(n_classes=3, per_class=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    protos = torch.rand(n_classes, 28, 28, generator=g)
    y = torch.arange(n_classes).repeat(per_class)
    return (protos[y] + 0.3 * torch.rand(len(y), 28, 28, generator=g)).clamp(0, 1), y


def test_train_siamese_learns_to_separate_classes():
    x, y = _prototypes()
    model, history = sia.train_siamese(
        x, y, epochs=5, margin=0.5, batch_size=64, max_shift=0, progress=False, seed=0
    )
    losses, active = history["loss"], history["active_negatives"]
    assert len(losses) == len(active) == 5 and losses[-1] < losses[0]
    assert active[0] == 1.0 and active[-1] < 0.5  # negatives leave the margin as training goes on
    # 3 classes in equal numbers: a share of (n/3 - 1) / (n - 1) of the pairs are positive
    assert history["positive_share"] == pytest.approx((64 / 3 - 1) / 63, abs=0.02)
    i, j, same = sia.make_pairs(y, 400, seed=1)
    z = sia.embed(model, x)
    assert sia.verification_auc(sia.pair_distances(z[i], z[j]), same) > 0.95
    assert isinstance(model, sia.SiameseNet) and model.left.training
    again, _ = sia.train_siamese(x, y, epochs=1, batch_size=64, progress=False, seed=0)
    other, _ = sia.train_siamese(x, y, epochs=1, batch_size=64, progress=False, seed=1)
    first = model.left[1].weight
    assert not torch.equal(again.left[1].weight, other.left[1].weight) and first.shape == (
        8,
        1,
        5,
        5,
    )


def test_output_bias_drift_sgd_stays_adam_moves():
    x, y = _prototypes(n_classes=4, per_class=40)
    drift = sia.output_bias_drift(x, y, steps=8, batch_size=32, seed=0)
    assert drift["grad"] < 1e-4 * drift["weight_grad"]  # zero up to rounding
    assert drift["sgd"] < 1e-6 and drift["adam"] > 1e-4


def test_error_rates():
    d = torch.tensor([0.1, 0.5, 0.9, 0.2, 1.5, 2.0])
    s = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    assert sia.error_rates(d, s, 0.6) == pytest.approx((1 / 3, 1 / 3))
    assert sia.error_rates(d, s, 0.05) == (0.0, 1.0)
    assert sia.error_rates(d, s, 3.0) == (1.0, 0.0)


@pytest.mark.parametrize("threshold, far, frr", [(0.1, 0.0, 1.0), (3.0, 1.0, 0.0)])
def test_roc_figure_at_slider_extremes(threshold, far, frr):
    """At the smallest threshold nothing is accepted (every same pair rejected), at the
    largest everything is (every different pair accepted)."""
    g = torch.Generator().manual_seed(0)
    same = (torch.rand(400, generator=g) < 0.5).float()
    d = 0.4 + 0.8 * torch.rand(400, generator=g) + 0.6 * (1 - same)  # within (0.4, 1.8)
    fig = sia.roc_figure(threshold, d, same, title="toy, ")
    title = fig.get_suptitle()
    assert title.startswith(f"toy, threshold {threshold:.2f}")
    assert f"{far:.1%} of different-digit pairs accepted" in title
    assert f"{frr:.1%} of same-digit pairs rejected" in title
    point = fig.axes[0].lines[-1].get_xydata()[0]
    assert tuple(point) == (far, 1 - frr)  # the operating point lies on the drawn ROC curve


def test_pca_variance_share():
    g = torch.Generator().manual_seed(0)
    flat = torch.randn(500, 2, generator=g) @ torch.randn(2, 32, generator=g)
    assert sia.pca_variance_share(flat) == pytest.approx(1.0)
    assert sia.pca_variance_share(torch.randn(3000, 32, generator=g)) < 0.1


def test_verification_auc():
    assert sia.verification_auc([0.1, 0.2, 0.9, 1.0], [1, 1, 0, 0]) == 1.0
    assert sia.verification_auc([0.9, 1.0, 0.1, 0.2], [1, 1, 0, 0]) == 0.0
    assert sia.verification_auc(torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.0])) == 0.5


def test_embed_accepts_a_branch_or_a_siamese_net():
    branch = sia.embedding_net(dim=4)
    x = _images(1100)
    assert torch.allclose(sia.embed(branch, x), sia.embed(sia.SiameseNet(branch), x))
    assert sia.embed(branch, x).shape == (1100, 4) and not sia.embed(branch, x).requires_grad


def test_embedding_figure():
    z = torch.randn(60, 8)
    fig = sia.embedding_figure(z, torch.arange(3).repeat(20), "AUC 0.9")
    assert isinstance(fig, Figure) and fig.axes[0].get_title() == "AUC 0.9"
    assert sia.embedding_figure(torch.randn(10, 2), torch.zeros(10)).axes[0].get_xlabel() == "z1"


@pytest.mark.parametrize("margin, inside", [(0.1, "0%"), (1.0, "33%"), (3.0, "100%")])
def test_margin_figure_at_slider_extremes(margin, inside):
    """A small margin leaves every dissimilar pair outside (no loss, no gradient); a large one
    puts all of them inside."""
    d = torch.tensor([0.05, 0.5, 2.0, 0.2, 1.5])
    s = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0])
    fig = sia.margin_figure(margin, d, s)
    title = fig.get_suptitle()
    assert (
        title == f"margin m = {margin:.2f}: {inside} of dissimilar test pairs lie inside the margin"
    )
    assert len(fig.axes) == 2
    alone = sia.margin_figure(margin)
    assert len(alone.axes) == 1 and alone.get_suptitle() == f"margin m = {margin:.2f}"
    # the dissimilar-pair loss is zero from the margin on
    x, loss = alone.axes[0].lines[1].get_data()
    assert np.all(loss[x >= margin] == 0) and np.all(loss[x < margin] > 0)


# --------------------------------------------------------------------------- exercises


def test_triplet_solution_matches_torch():
    a, p, n = sia_ex._A, sia_ex._P, sia_ex._N
    ours = sia_ex._solution_triplet(a, p, n, 1.0)
    assert ours.item() == pytest.approx(F.triplet_margin_loss(a, p, n, margin=1.0).item(), rel=1e-4)


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda d, s, m: (s * d**2 + (1 - s) * torch.clamp(m - d, min=0) ** 2).mean(), "twice"),
        (
            lambda d, s, m: ((1 - s) * d**2 + s * torch.clamp(m - d, min=0) ** 2).mean() / 2,
            "swapped",
        ),
        (lambda d, s, m: (s * d**2 + (1 - s) * torch.clamp(m - d, min=0)).mean() / 2, "squared"),
        (lambda d, s, m: (s * d**2 + (1 - s) * (m - d) ** 2).mean() / 2, "is off"),
        (lambda d, s, m: s * d**2, "shape"),
        (lambda d, s, m: torch.tensor(float("nan")), "NaN"),
        (lambda d, s: 0.0, "raised TypeError"),
    ],
)
def test_contrastive_wrong_answers(answer, phrase):
    assert_feedback("09.1", answer, phrase)


def _d(u, v):
    return (u - v).norm(dim=1)


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda a, p, n, m: (_d(a, p) ** 2 - _d(a, n) ** 2 + m).clamp(min=0).mean(), "squared"),
        (lambda a, p, n, m: (_d(a, p) - _d(a, n) + m).mean(), "max(0"),
        (lambda a, p, n, m: (_d(a, n) - _d(a, p) + m).clamp(min=0).mean(), "swapped"),
        (lambda a, p, n, m: (_d(a, p) - _d(a, n) + m).clamp(min=0), "shape"),
        (lambda a, p, n, m: "0.5", "should be a number"),
        (lambda a, p, n: 0.0, "raised TypeError"),
    ],
)
def test_triplet_wrong_answers(answer, phrase):
    assert_feedback("09.2", answer, phrase)


def test_triplet_squared_form_is_called_valid():
    """FaceNet's squared-distance form is named as a valid form, never as a mistake."""
    result = assert_feedback(
        "09.2",
        lambda a, p, n, m: (_d(a, p) ** 2 - _d(a, n) ** 2 + m).clamp(min=0).mean(),
        "FaceNet",
        "valid form",
        "plain Euclidean",
    )
    assert "wrong" not in result.message.split("Hint:")[0].lower()


def test_solutions_pass():
    for id in ("09.1", "09.2"):
        assert_feedback(id, exercises.get(id).solution, status="correct")
