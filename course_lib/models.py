"""Networks that several notebooks use, and how to count and measure their weights.

* :func:`mlp`: a multi-layer perceptron from a list of layer widths, the building
  block of notebooks 01, 02, 05, 09, 10, 11 and 12;
* :class:`LeNet300100`: the fully connected MNIST network that notebooks 06
  (pruning) and 07 (quantisation) shrink;
* :func:`count_parameters`, :func:`state_dict_bytes` and :func:`serialized_bytes`:
  how many numbers a model holds and how many bytes ``torch.save`` writes for them.

What a notebook builds as its lesson (an initialisation scheme, a residual block,
weight normalisation) stays in that notebook's module.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "ACTIVATIONS",
    "LeNet300100",
    "count_parameters",
    "mlp",
    "serialized_bytes",
    "state_dict_bytes",
]

#: The activation functions the notebooks compare, by name.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "linear": nn.Identity,
}


def mlp(
    sizes: Sequence[int],
    activation: str = "relu",
    flatten: bool = False,
    seed: int | None = None,
) -> nn.Sequential:
    """``Linear(sizes[0], sizes[1]), act, ..., Linear(sizes[-2], sizes[-1])``.

    ``sizes`` lists the widths from the input to the output; an activation
    follows every layer but the last (which gives logits or a regression
    output). ``flatten`` puts an ``nn.Flatten`` in front, for image batches.
    The weights are PyTorch's default initialisation, drawn from ``seed`` when
    given (else from the global generator).
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"an MLP needs at least an input and an output width >= 1, got {sizes}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {list(ACTIVATIONS)}")
    if seed is not None:
        torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Flatten()] if flatten else []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class LeNet300100(nn.Module):
    """LeNet-300-100 (LeCun et al. 1998): 784 -> 300 -> 100 -> 10, ReLU between layers.

    266,200 weights and 410 biases; the fully connected network that Han et al.
    (2015) prune to 8 % of its weights. Takes flat 784-pixel vectors or 28x28 images.
    """

    def __init__(self, seed: int | None = None):
        super().__init__()
        if seed is not None:
            torch.manual_seed(seed)
        self.fc1 = nn.Linear(784, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar weights and biases in ``model`` (only trainable ones if asked)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def serialized_bytes(obj) -> int:
    """Bytes that ``torch.save(obj)`` writes (e.g. for a ``state_dict``)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getbuffer().nbytes


def state_dict_bytes(model: nn.Module) -> int:
    """Bytes that ``torch.save(model.state_dict())`` writes: every weight stored densely."""
    return serialized_bytes(model.state_dict())
