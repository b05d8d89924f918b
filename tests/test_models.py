"""course_lib.models: the networks several notebooks use, and their sizes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib import models


def test_mlp_layers_activations_and_seed():
    net = models.mlp([64, 32, 16, 10], activation="tanh", seed=1)
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "Tanh", "Linear", "Tanh", "Linear"]
    assert [m.out_features for m in net if isinstance(m, nn.Linear)] == [32, 16, 10]
    assert net(torch.zeros(5, 64)).shape == (5, 10)
    assert torch.equal(net[0].weight, models.mlp([64, 32, 16, 10], "tanh", seed=1)[0].weight)
    assert not torch.equal(net[0].weight, models.mlp([64, 32, 16, 10], "tanh", seed=2)[0].weight)
    flat = models.mlp([784, 10], flatten=True)
    assert isinstance(flat[0], nn.Flatten) and flat(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert len(models.mlp([3, 1])) == 1  # a single layer: no activation
    for bad in ([3], [3, 0]):
        with pytest.raises(ValueError, match="at least an input and an output"):
            models.mlp(bad)
    with pytest.raises(ValueError, match="unknown activation"):
        models.mlp([3, 1], activation="swish")


def test_lenet_shapes_counts_and_seed():
    model = models.LeNet300100(seed=3)
    assert model(torch.zeros(4, 1, 28, 28)).shape == (4, 10)
    assert model(torch.zeros(4, 784)).shape == (4, 10)
    assert sum(m.weight.numel() for m in (model.fc1, model.fc2, model.fc3)) == 266_200
    assert sum(p.numel() for p in model.parameters()) == 266_610
    assert torch.equal(model.fc1.weight, models.LeNet300100(seed=3).fc1.weight)


def test_count_parameters_all_and_trainable():
    net = models.mlp([4, 3, 2])
    assert models.count_parameters(net) == 4 * 3 + 3 + 3 * 2 + 2
    net[0].weight.requires_grad_(False)
    assert models.count_parameters(net, trainable_only=True) == 3 + 3 * 2 + 2


def test_bytes_grow_with_the_weights():
    assert 4000 < models.serialized_bytes(torch.zeros(1000)) < 4000 + 2000
    small, big = models.mlp([10, 10]), models.mlp([100, 100])
    assert 110 * 4 < models.state_dict_bytes(small) < 110 * 4 + 2000
    assert 10_100 * 4 < models.state_dict_bytes(big) < 10_100 * 4 + 2000
