"""course_lib.pruning (notebook 06)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_feedback
from torch import nn
from torch.nn.utils import prune

import course_lib as cl
from course_lib import exercises, models, training
from course_lib import pruning as P


@pytest.fixture(scope="module")
def model_and_data():
    """A LeNet-300-100 with random weights and inputs labelled by the model itself.

    Its accuracy on ``test`` is exactly 1.0 before pruning, so any loss is due to pruning.
    """
    model = models.LeNet300100(seed=0).eval()
    x = torch.randn(300, 784, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, (x, y)


def _linear_weights(model):
    return [m.weight for m in P.prunable_layers(model).values()]


# --------------------------------------------------------------------------- training the dense network


def test_train_lenet_learns_a_separable_task():
    x, y = _separable_task()
    model, history = P.train_lenet((x, y), (x, y), epochs=8, progress=False)
    assert history.epochs == 8 and len(history.val_accuracy) == 8
    assert not model.training
    assert training.accuracy(model, (x, y)) > 0.98  # seeds 0-2 reach 99.5-100 %


def test_train_lenet_starts_from_initial_lenet_and_follows_course_seed(monkeypatch):
    from course_lib import config

    empty = (torch.zeros(4, 784), torch.zeros(4, dtype=torch.long))
    untrained, history = P.train_lenet(empty, epochs=0, seed=5, progress=False)
    assert history.epochs == 0
    assert torch.equal(untrained.fc1.weight, P.initial_lenet(5).fc1.weight)
    assert not torch.equal(P.initial_lenet(5).fc1.weight, P.initial_lenet(6).fc1.weight)
    monkeypatch.setattr(config, "_current", None)
    monkeypatch.setenv("COURSE_SEED", "2")
    assert torch.equal(P.initial_lenet().fc1.weight, models.LeNet300100(seed=2).fc1.weight)


def test_prunable_layers_and_sparsity():
    seq = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    assert list(P.prunable_layers(seq)) == ["0", "2"]
    with torch.no_grad():
        seq[0].weight[0] = 0.0  # 4 of 12 zero
        seq[2].weight.zero_()  # 6 of 6 zero
    assert P.sparsity(seq) == pytest.approx(10 / 18)
    assert P.layer_sparsity(seq) == {"0": pytest.approx(1 / 3), "2": 1.0}
    assert P.sparsity(torch.tensor([0.0, 1.0, 0.0, 2.0])) == 0.5
    assert P.sparsity([torch.zeros(3), torch.ones(1)]) == 0.75


# --------------------------------------------------------------------------- masks


def test_magnitude_mask_removes_the_smallest_magnitudes():
    w = torch.randn(40, 50, generator=torch.Generator().manual_seed(2))
    mask = P.magnitude_mask(w, 0.3)
    assert mask.shape == w.shape and int((mask == 0).sum()) == 600
    assert w[mask == 0].abs().max() <= w[mask == 1].abs().min()
    assert torch.equal(P.magnitude_mask(w, 0.0), torch.ones_like(w))
    assert torch.equal(P.magnitude_mask(w, 1.0), torch.zeros_like(w))
    with pytest.raises(ValueError, match="fraction"):
        P.magnitude_mask(w, 1.5)


def test_magnitude_mask_equals_torch_and_compounds():
    layer = nn.Linear(30, 20)
    ours = P.magnitude_mask(layer.weight, 0.5)
    prune.l1_unstructured(layer, "weight", amount=0.5)
    assert torch.equal(layer.weight_mask, ours)
    twice = P.magnitude_mask(layer.weight_orig, 0.5, mask=ours)
    prune.l1_unstructured(layer, "weight", amount=0.5)
    assert torch.equal(layer.weight_mask, twice)
    assert twice.mean().item() == 0.25


def test_global_masks_equal_torch_global_unstructured(model_and_data):
    model, _ = model_and_data
    masks = P.global_magnitude_masks(_linear_weights(model), 0.8)
    assert [m.shape for m in masks] == [w.shape for w in _linear_weights(model)]
    assert sum(int((m == 0).sum()) for m in masks) == round(0.8 * 266_200)
    copy = cl.training.clone(model)
    params = [(m, "weight") for m in P.prunable_layers(copy).values()]
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=0.8)
    for ours, (m, _) in zip(masks, params, strict=True):
        assert torch.equal(ours, m.weight_mask)


@pytest.mark.parametrize("dim", [0, 1])
def test_structured_mask_equals_ln_structured(dim):
    layer = nn.Linear(12, 10)
    ours = P.structured_mask(layer.weight, 0.4, n=2, dim=dim)
    prune.ln_structured(layer, "weight", amount=0.4, n=2, dim=dim)
    assert torch.equal(ours, layer.weight_mask)
    slices = ours.amax(dim=1 - dim)
    assert int((slices == 0).sum()) == round(0.4 * layer.weight.shape[dim])
    assert torch.equal(P.structured_mask(layer.weight_orig, 0.0), torch.ones(10, 12))


def test_apply_masks_multiplies_in_place():
    seq = nn.Sequential(nn.Linear(3, 2))
    before = seq[0].weight.detach().clone()
    mask = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    assert P.apply_masks(seq, {"0": mask}) is seq
    assert torch.equal(seq[0].weight, before * mask)


def test_prune_model_copies_and_respects_the_options(model_and_data):
    model, _ = model_and_data
    original = model.fc1.weight.detach().clone()
    glob = P.prune_model(model, 0.9, scope="global")
    assert torch.equal(model.fc1.weight, original)  # untouched
    assert P.sparsity(glob) == pytest.approx(0.9, abs=1e-5)
    layer = P.prune_model(model, 0.5, scope="layer")
    assert all(v == pytest.approx(0.5, abs=1e-3) for v in P.layer_sparsity(layer).values())
    neurons = P.prune_model(model, 0.5, structured=True)
    assert P.layer_sparsity(neurons)["fc3"] == 0.0
    assert int((neurons.fc1.weight.abs().sum(1) == 0).sum()) == 150
    with pytest.raises(ValueError, match="scope"):
        P.prune_model(model, 0.5, scope="neuron")


@pytest.mark.parametrize(
    "scope, structured, amount",
    [("layer", False, 0.6), ("global", False, 0.7), ("global", True, 0.2)],
)
def test_torch_prune_matches_prune_model(model_and_data, scope, structured, amount):
    model, _ = model_and_data
    lib = P.torch_prune(cl.training.clone(model), amount, scope=scope, structured=structured)
    assert hasattr(lib.fc1, "weight_orig") and hasattr(lib.fc1, "weight_mask")
    ours = P.prune_model(model, amount, scope=scope, structured=structured)
    for a, b in zip(_linear_weights(lib), _linear_weights(ours), strict=True):
        assert torch.equal(a, b)


def test_torch_prune_rejects_unknown_scope(model_and_data):
    with pytest.raises(ValueError, match="scope"):
        P.torch_prune(cl.training.clone(model_and_data[0]), 0.5, scope="everything")


# --------------------------------------------------------------------------- neurons removed for real


@pytest.fixture
def biased_model(model_and_data):
    """The random LeNet with biases of both signs, so that masked neurons output relu(b) > 0."""
    model = cl.training.clone(model_and_data[0])
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for layer in P.prunable_layers(model).values():
            layer.bias.copy_(torch.rand(layer.bias.shape, generator=g) - 0.5)
    return model


@pytest.mark.parametrize("amount", [0.3, 0.5])
def test_remove_neurons_computes_what_the_masked_network_computes(biased_model, amount):
    x = torch.randn(64, 784, generator=torch.Generator().manual_seed(2))
    masked = P.torch_prune(cl.training.clone(biased_model), amount, structured=True)
    gone = masked.fc1.weight_mask[:, 0] == 0
    hidden = torch.relu(masked.fc1(x))[:, gone]
    assert (hidden > 0).any()  # zeroed rows alone leave relu(bias) behind
    small = P.remove_neurons(biased_model, amount)
    sizes = [m.weight.shape for m in P.prunable_layers(small).values()]
    kept1, kept2 = 300 - round(amount * 300), 100 - round(amount * 100)
    assert sizes == [(kept1, 784), (kept2, kept1), (10, kept2)]
    torch.testing.assert_close(small(x), masked(x), atol=1e-5, rtol=1e-5)
    assert models.count_parameters(small) < models.count_parameters(biased_model)


def test_remove_neurons_without_removal_is_the_same_network(biased_model):
    x = torch.randn(8, 784, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(P.remove_neurons(biased_model, 0.0)(x), biased_model(x))


# --------------------------------------------------------------------------- experiments


def test_accuracy_vs_sparsity_starts_at_the_dense_accuracy(model_and_data):
    model, test = model_and_data
    curve = P.accuracy_vs_sparsity(model, test, [0.0, 0.5, 0.99])
    assert curve["accuracy"][0] == 1.0 and curve["accuracy"][2] < 0.5
    assert np.allclose(curve["sparsity"], [0.0, 0.5, 0.99], atol=1e-5)
    neurons = P.accuracy_vs_sparsity(model, test, [0.5], structured=True)
    assert neurons["sparsity"][0] == pytest.approx((150 * 784 + 50 * 300) / 266_200)


def test_iterative_pruning_keeps_pruned_weights_at_zero(model_and_data):
    model, (x, y) = model_and_data
    original = model.fc1.weight.detach().clone()
    train = (x[:128], y[:128])
    pruned, records = P.iterative_pruning(
        model, train, (x, y), [0.5, 0.8], epochs=1, lr=1e-3, progress=False
    )
    assert torch.equal(model.fc1.weight, original)
    assert [r["target"] for r in records] == [0.5, 0.8]
    assert records[0]["sparsity"] == pytest.approx(0.5, abs=1e-5)
    assert P.sparsity(pruned) == pytest.approx(0.8, abs=1e-5)  # retraining kept the zeros
    assert not hasattr(pruned.fc1, "weight_orig") and not hasattr(pruned.fc1, "weight_mask")
    assert records[1]["pruned_accuracy"] < 1.0  # pruning 80 % changed some predictions
    assert records[-1]["retrained_accuracy"] == training.accuracy(pruned, (x, y))


def test_iterative_pruning_rejects_falling_targets(model_and_data):
    model, test = model_and_data
    with pytest.raises(ValueError, match="targets"):
        P.iterative_pruning(model, test, test, [0.5, 0.3], epochs=0, progress=False)


def test_ticket_starts_rewind_to_the_initial_weights_under_the_mask(model_and_data):
    pruned = P.prune_model(model_and_data[0], 0.9)
    starts = P.ticket_starts(pruned, seed=4)
    theta0 = P.initial_lenet(4)
    mask = (pruned.fc1.weight != 0).float()
    assert torch.equal(starts["rewound"].fc1.weight, theta0.fc1.weight * mask)
    assert torch.equal(starts["rewound"].fc1.weight_mask, mask)
    assert torch.equal(starts["random"].fc1.weight == 0, pruned.fc1.weight == 0)
    assert not torch.equal(starts["random"].fc1.weight, starts["rewound"].fc1.weight)


def _separable_task(n=400):
    """Class c lights up input pixel 10 c: learnable in a few steps."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 10
    x = torch.randn(n, 784, generator=g) * 0.5
    x[torch.arange(n), y * 10] += 4.0
    return x, y


def test_lottery_ticket_rewound_beats_random_reinitialisation():
    x, y = _separable_task()
    dense, _ = P.train_lenet((x, y), epochs=3, seed=1, progress=False)
    pruned = P.prune_model(dense, 0.8)
    result = P.lottery_ticket(pruned, (x[:300], y[:300]), (x[300:], y[300:]), epochs=3, seed=1)
    assert set(result) == {"rewound", "random"} and all(len(v) == 3 for v in result.values())
    assert result["rewound"][-1] > result["random"][-1] + 0.2  # seed 1: 0.76 vs 0.22


def test_compare_latency_times_a_big_layer_slower_than_a_small_one():
    before = torch.get_num_threads()
    big, small = nn.Linear(512, 512), nn.Linear(512, 8)
    times = P.compare_latency(
        {"big": big, "small": small}, torch.randn(64, 512), rounds=3, repeats=5
    )
    assert set(times) == {"big", "small"} and all(t > 0 for t in times.values())
    assert times["big"] > 3 * times["small"]  # 64 times the work
    assert torch.get_num_threads() == before
    assert 0 < P.cpu_latency(small, torch.randn(4, 512), repeats=3) < 1


# --------------------------------------------------------------------------- sparse storage


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_csr_arrays_equal_torch_and_use_compact_types():
    g = torch.Generator().manual_seed(4)
    w = torch.where(torch.rand(30, 40, generator=g) < 0.2, torch.randn(30, 40, generator=g), 0.0)
    w[5] = 0.0
    wide = P.csr_arrays(w, compact=False)
    ref = w.to_sparse_csr()
    assert torch.equal(wide["values"], ref.values())
    assert torch.equal(wide["col_index"], ref.col_indices())
    assert torch.equal(wide["row_ptr"], ref.crow_indices())
    compact = P.csr_arrays(w)
    assert compact["col_index"].dtype == torch.int16 and compact["row_ptr"].dtype == torch.int32
    assert compact["shape"].tolist() == [30, 40]
    assert P.csr_arrays(torch.zeros(2, 40_000))["col_index"].dtype == torch.int32
    with pytest.raises(ValueError, match="2-D"):
        P.csr_arrays(torch.zeros(3, 4, 5))


def test_serialized_and_dense_bytes():
    assert 4000 < models.serialized_bytes(torch.zeros(1000)) < 4000 + 2000
    seq = nn.Sequential(nn.Linear(100, 50))
    assert 5050 * 4 < models.state_dict_bytes(seq) < 5050 * 4 + 2000


def test_save_and_load_sparse_round_trip(model_and_data, tmp_path):
    model, (x, _) = model_and_data
    pruned = P.prune_model(model, 0.92)
    size = P.save_sparse(pruned, tmp_path / "m.pt")
    assert size == (tmp_path / "m.pt").stat().st_size
    payload = P.sparse_bytes_expected(pruned)
    assert payload < size < payload + 8000
    assert models.state_dict_bytes(pruned) / size > 7
    wide = P.save_sparse(pruned, tmp_path / "wide.pt", compact=False)
    assert P.sparse_bytes_expected(pruned, compact=False) < wide < size * 2.2
    reloaded = P.load_sparse(tmp_path / "m.pt", models.LeNet300100(seed=9))
    for a, b in zip(_linear_weights(reloaded), _linear_weights(pruned), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(reloaded.fc3.bias, pruned.fc3.bias)
    assert torch.equal(cl.training.predict(reloaded, x), cl.training.predict(pruned, x))


# --------------------------------------------------------------------------- figures


@pytest.mark.filterwarnings("error::RuntimeWarning")  # as test_slider_ranges does
def test_sparsity_figure_at_the_slider_ends_shows_what_the_lesson_says(model_and_data):
    model, test = model_and_data
    curves = {"global": P.accuracy_vs_sparsity(model, test, [0.0, 0.5])}
    none = cl.widgets.render(P.sparsity_figure, sparsity=0.0, model=model, test=test, curves=curves)
    assert none.get_suptitle().endswith(
        "0.0% of weights removed: test accuracy 100.00% (no retraining)"
    )
    pixels = none.axes[2].get_images()[0].get_array()
    assert pixels.min() == pixels.max() == 300  # every pixel keeps all of its connections
    most = cl.widgets.render(P.sparsity_figure, sparsity=0.99, model=model, test=test)
    assert "99.0% of weights removed" in most.get_suptitle()
    accuracy = float(most.get_suptitle().split("test accuracy ")[1].split("%")[0]) / 100
    assert accuracy < 0.5  # one-shot pruning to 99 % destroys the network
    kept = most.axes[2].get_images()[0].get_array()
    assert kept.mean() < 0.05 * 300  # few connections per pixel survive


def test_curves_figure_titles_the_dense_and_retrained_accuracy():
    curves = {"global": {"sparsity": np.array([0.0, 0.9]), "accuracy": np.array([0.97, 0.9])}}
    records = [{"sparsity": 0.92, "retrained_accuracy": 0.9712}]
    fig = cl.widgets.render(P.curves_figure, curves=curves, dense_accuracy=0.97, retrained=records)
    assert (
        "dense 97.00 %" in fig.axes[0].get_title() and "97.12 % at 92%" in fig.axes[0].get_title()
    )
    fig = cl.widgets.render(P.curves_figure, curves=curves, dense_accuracy=0.97)
    assert fig.axes[0].get_title() == "dense 97.00 %"


# --------------------------------------------------------------------------- exercises


def _prune_by(score):
    def answer(weight, amount):
        k = round(amount * weight.numel())
        pruned = weight.clone()
        pruned.view(-1)[torch.argsort(score(weight).flatten())[:k]] = 0.0
        return pruned

    return answer


def test_exercise_06_1_typical_mistakes():
    assert_feedback("06.1", _prune_by(lambda w: -w.abs()), "removed large weights")
    assert_feedback("06.1", _prune_by(lambda w: w), "signed value")
    assert_feedback("06.1", lambda w, amount: torch.where(w.abs() < amount, 0.0, w), "you zeroed")
    assert_feedback("06.1", P.magnitude_mask, "is off")  # the mask, not the pruned weights


def test_exercise_06_2_typical_mistakes():
    solution = exercises.get("06.2").solution

    def no_leading_zero(w):
        values, cols, ptr = solution(w)
        return values, cols, ptr[1:]

    def counts(w):
        values, cols, ptr = solution(w)
        return values, cols, torch.diff(ptr)

    def column_major(w):
        values, _, ptr = solution(w.t())
        return values, solution(w)[1], ptr

    assert_feedback("06.2", no_leading_zero, "rows + 1 entries")
    assert_feedback("06.2", counts, "running totals")
    assert_feedback("06.2", column_major, "column by column")
    assert_feedback("06.2", lambda w: solution(w)[:2], "three tensors")


def test_exercise_06_3_typical_mistakes():
    assert_feedback("06.3", lambda amounts: max(0.0, 1 - sum(amounts)), "multiply")
    assert_feedback(
        "06.3", lambda amounts: 1 - float(np.prod([1 - a for a in amounts])), "fraction removed"
    )
    assert_feedback("06.3", lambda amounts: [0.25, 0.5], "single number")
