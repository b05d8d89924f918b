"""Notebook 06: pruning, removing the weights that matter least.

In the notebook's order: LeNet-300-100 trained on MNIST; magnitude pruning from
scratch (a 0/1 mask on the smallest ``|w|``) and with ``torch.nn.utils.prune``
(layer-wise and global, unstructured and structured); neurons removed for real
(a smaller dense network, biases folded into the next layer); accuracy against
sparsity without retraining; iterative prune-and-retrain (Han et al. 2015); the
lottery ticket experiment (Frankle and Carbin 2019); CPU latency of sparse and
shrunk networks; the size of a pruned model stored in compressed sparse row (CSR)
form; and the sparsity slider.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.nn.utils import prune

from . import cache, config, training, viz
from .models import LeNet300100

__all__ = [
    "accuracy_vs_sparsity",
    "apply_masks",
    "compare_latency",
    "cpu_latency",
    "csr_arrays",
    "curves_figure",
    "global_magnitude_masks",
    "initial_lenet",
    "iterative_pruning",
    "layer_sparsity",
    "load_sparse",
    "lottery_ticket",
    "magnitude_mask",
    "prunable_layers",
    "prune_model",
    "remove_neurons",
    "save_sparse",
    "sparse_bytes_expected",
    "sparsity",
    "sparsity_figure",
    "structured_mask",
    "ticket_starts",
    "torch_prune",
    "train_lenet",
]

# --------------------------------------------------------------------------- the dense network


def initial_lenet(seed: int | None = None) -> LeNet300100:
    """The untrained LeNet-300-100 that :func:`train_lenet` starts from (its weights are θ0)."""
    return LeNet300100(seed=config.resolve_seed(seed))


def _fit_lenet(model, train, test, epochs: int, lr: float, seed: int, progress: bool):
    """Adam with a cosine learning rate from ``lr`` down to zero, mini-batches of 128."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    return training.fit(
        model,
        train,
        epochs=epochs,
        optimizer=optimizer,
        scheduler=schedule,
        val=test,
        seed=seed,
        progress=progress,
        device="cpu",
    )


def train_lenet(
    train, test=None, epochs: int = 10, lr: float = 1e-3, seed: int | None = None, progress=True
) -> tuple[LeNet300100, training.History]:
    """LeNet-300-100 trained from :func:`initial_lenet` on ``train`` (an ``(x, y)`` pair).

    Returns the model (in evaluation mode) and its history.
    """
    seed = config.resolve_seed(seed)
    model = initial_lenet(seed)
    history = _fit_lenet(model, train, test, epochs, lr, seed, progress)
    return model.eval(), history


def prunable_layers(model: nn.Module) -> dict[str, nn.Linear]:
    """The layers whose weights we prune: every ``nn.Linear`` (biases are kept)."""
    return {name: m for name, m in model.named_modules() if isinstance(m, nn.Linear)}


def sparsity(model_or_tensors) -> float:
    """Fraction of weights that are exactly zero, over all Linear weights (or given tensors)."""
    if isinstance(model_or_tensors, nn.Module):
        tensors = [m.weight for m in prunable_layers(model_or_tensors).values()]
    elif isinstance(model_or_tensors, torch.Tensor):
        tensors = [model_or_tensors]
    else:
        tensors = list(model_or_tensors)
    return _zero_fraction(tensors)


def _zero_fraction(tensors: Sequence[torch.Tensor]) -> float:
    zeros = sum(int((t == 0).sum()) for t in tensors)
    return zeros / sum(t.numel() for t in tensors)


def layer_sparsity(model: nn.Module) -> dict[str, float]:
    """Sparsity of each Linear layer's weight matrix, by layer name."""
    return {name: sparsity(m.weight) for name, m in prunable_layers(model).items()}


# --------------------------------------------------------------------------- masks from scratch


def _n_to_prune(amount: float, n: int) -> int:
    """How many of ``n`` entries a fraction ``amount`` prunes (rounded as torch does)."""
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"amount must be a fraction in [0, 1], got {amount}")
    return round(amount * n)


def magnitude_mask(
    weight: torch.Tensor, amount: float, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mask (1 keep, 0 prune) that removes the fraction ``amount`` of smallest ``|w|``.

    With an existing ``mask`` only the surviving entries compete, and
    ``amount`` is a fraction *of the survivors*: pruning 50 % twice leaves
    25 %, exactly as ``torch.nn.utils.prune`` does when called again.
    """
    mask = torch.ones_like(weight) if mask is None else mask.clone()
    alive = mask.flatten().nonzero().squeeze(1)  # positions still in play
    k = _n_to_prune(amount, len(alive))
    if k > 0:
        scores = weight.detach().abs().flatten()[alive]
        smallest = torch.topk(scores, k, largest=False).indices  # the k smallest |w|
        mask.view(-1)[alive[smallest]] = 0
    return mask


def global_magnitude_masks(weights: Sequence[torch.Tensor], amount: float) -> list[torch.Tensor]:
    """Masks that prune the fraction ``amount`` of smallest ``|w|`` over all tensors together.

    One threshold for the whole network: a layer of small weights loses more
    than a layer of large ones.
    """
    flat = torch.cat([w.detach().flatten() for w in weights])
    mask = magnitude_mask(flat, amount)
    masks, start = [], 0
    for w in weights:
        masks.append(mask[start : start + w.numel()].view_as(w))
        start += w.numel()
    return masks


def structured_mask(
    weight: torch.Tensor, amount: float, n: float = 2, dim: int = 0
) -> torch.Tensor:
    """Mask that zeroes whole slices along ``dim`` (rows = output neurons for ``dim=0``).

    The fraction ``amount`` of slices with the smallest L``n`` norm is zeroed.
    Like ``torch.nn.utils.prune.ln_structured`` it touches the weight only: the
    bias of a zeroed neuron stays, so the neuron still outputs ``relu(bias)``.
    """
    size = weight.shape[dim]
    k = _n_to_prune(amount, size)
    other = [d for d in range(weight.dim()) if d != dim]
    norms = torch.linalg.vector_norm(weight.detach(), ord=n, dim=other)
    keep = torch.topk(norms, size - k, largest=True).indices
    shape = [1] * weight.dim()
    shape[dim] = size
    slice_mask = torch.zeros(size, dtype=weight.dtype)
    slice_mask[keep] = 1
    return slice_mask.view(shape).expand_as(weight).clone()


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """Multiply each named Linear layer's weight by its mask, in place; returns ``model``."""
    layers = prunable_layers(model)
    with torch.no_grad():
        for name, mask in masks.items():
            layers[name].weight.mul_(mask)
    return model


def _masks(layers: dict[str, nn.Linear], amount: float, scope: str, structured: bool) -> dict:
    if structured:  # hidden neurons only: the output layer keeps its ten classes
        return {name: structured_mask(layers[name].weight, amount) for name in list(layers)[:-1]}
    if scope == "global":
        weights = [m.weight for m in layers.values()]
        return dict(zip(layers, global_magnitude_masks(weights, amount), strict=True))
    if scope == "layer":
        return {name: magnitude_mask(m.weight, amount) for name, m in layers.items()}
    raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")


def prune_model(
    model: nn.Module, amount: float, scope: str = "global", structured: bool = False
) -> nn.Module:
    """A pruned copy of ``model`` (from-scratch masks; ``model`` itself is untouched).

    ``scope="global"`` ranks all weights together, ``"layer"`` prunes every
    layer by ``amount``. ``structured=True`` zeroes whole rows of the hidden
    layers (neurons, by L2 norm), as ``ln_structured`` does.
    """
    pruned = training.clone(model)
    return apply_masks(pruned, _masks(prunable_layers(pruned), amount, scope, structured))


# --------------------------------------------------------------------------- the library way


def torch_prune(
    model: nn.Module, amount: float, scope: str = "global", structured: bool = False
) -> nn.Module:
    """Prune ``model`` in place with ``torch.nn.utils.prune`` (same options as :func:`prune_model`).

    The pruning stays *attached*: each layer gets a ``weight_orig`` parameter,
    a ``weight_mask`` buffer and a hook that recomputes ``weight = weight_orig
    * weight_mask`` before every forward pass.
    """
    layers = prunable_layers(model)
    if structured:
        for m in list(layers.values())[:-1]:
            prune.ln_structured(m, "weight", amount=amount, n=2, dim=0)
    elif scope == "global":
        params = [(m, "weight") for m in layers.values()]
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=amount)
    elif scope == "layer":
        for m in layers.values():
            prune.l1_unstructured(m, "weight", amount=amount)
    else:
        raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
    return model


def _make_permanent(model: nn.Module) -> nn.Module:
    for m in prunable_layers(model).values():
        if prune.is_pruned(m) and hasattr(m, "weight_mask"):
            prune.remove(m, "weight")
    return model


# --------------------------------------------------------------------------- neurons removed for real


def remove_neurons(model: nn.Module, amount: float) -> nn.Sequential:
    """A smaller dense network without the fraction ``amount`` of each hidden layer's neurons.

    The neurons are those of :func:`structured_mask` (smallest row norms). A
    masked neuron still outputs the constant ``relu(b_j)``; removing it deletes
    its row and bias and the next layer's column ``j``, and adds
    ``W_next[:, j] * relu(b_j)`` to the next layer's bias, so the smaller
    network computes exactly what the masked one does.
    """
    layers = list(prunable_layers(model).values())
    keep = [torch.arange(layers[0].in_features)]
    for layer in layers[:-1]:
        keep.append(structured_mask(layer.weight, amount)[:, 0].nonzero().squeeze(1))
    keep.append(torch.arange(layers[-1].out_features))
    modules: list[nn.Module] = [nn.Flatten()]
    for i, layer in enumerate(layers):
        w, b = layer.weight.detach(), layer.bias.detach().clone()
        if i > 0:  # the removed neurons of the layer below send a constant relu(bias)
            gone = torch.ones(w.shape[1], dtype=torch.bool)
            gone[keep[i]] = False
            b += w[:, gone] @ torch.relu(layers[i - 1].bias.detach()[gone])
        small = nn.Linear(len(keep[i]), len(keep[i + 1]))
        with torch.no_grad():
            small.weight.copy_(w[keep[i + 1]][:, keep[i]])
            small.bias.copy_(b[keep[i + 1]])
        modules += [small, nn.ReLU()] if i < len(layers) - 1 else [small]
    return nn.Sequential(*modules).eval()


# --------------------------------------------------------------------------- experiments


def accuracy_vs_sparsity(
    model: nn.Module,
    test,
    sparsities: Sequence[float],
    scope: str = "global",
    structured: bool = False,
) -> dict[str, np.ndarray]:
    """One-shot pruning (no retraining) at each target sparsity; the measured curve.

    Returns ``{"sparsity": ..., "accuracy": ...}``; ``sparsity`` is the
    fraction of all weights actually zeroed (for structured pruning it differs
    from the target, which is the fraction of hidden neurons removed).
    """
    measured, accs = [], []
    for s in sparsities:
        pruned = prune_model(model, s, scope=scope, structured=structured)
        measured.append(sparsity(pruned))
        accs.append(training.accuracy(pruned, test))
    return {"sparsity": np.array(measured), "accuracy": np.array(accs)}


def iterative_pruning(
    model: nn.Module,
    train,
    test,
    targets: Sequence[float],
    epochs: int = 3,
    lr: float = 3e-4,
    seed: int | None = None,
    progress: bool = True,
) -> tuple[nn.Module, list[dict[str, float]]]:
    """Prune globally to each target sparsity in turn, retraining ``epochs`` after each step.

    ``model`` is left untouched; returns the pruned, retrained copy (pruning
    made permanent) and one record per round with the sparsity, the accuracy
    right after pruning and the accuracy after retraining. The masks stay on
    during retraining, so pruned weights stay zero.
    """
    from tqdm.auto import tqdm

    seed = config.resolve_seed(seed)
    pruned = training.clone(model)
    params = [(m, "weight") for m in prunable_layers(pruned).values()]
    records: list[dict[str, float]] = []
    current = 0.0
    for round_, target in enumerate(tqdm(targets, desc="prune + retrain", disable=not progress)):
        if not current <= target < 1.0:
            raise ValueError(f"targets must rise and stay below 1, got {list(targets)}")
        step = 1.0 - (1.0 - target) / (1.0 - current)  # torch prunes a share of the survivors
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=step)
        current = target
        after_prune = training.accuracy(pruned, test)
        if epochs > 0:
            optimizer = torch.optim.Adam(pruned.parameters(), lr=lr)
            step_seed = seed + round_ + 1
            training.fit(pruned, train, epochs, optimizer=optimizer, seed=step_seed,
                         progress=False, device="cpu")  # fmt: skip
        records.append(
            {
                "target": target,
                "sparsity": sparsity([m.weight for m, _ in params]),
                "pruned_accuracy": after_prune,
                "retrained_accuracy": training.accuracy(pruned, test),
            }
        )
    return _make_permanent(pruned).eval(), records


def curves_figure(
    curves: dict[str, dict[str, np.ndarray]],
    dense_accuracy: float,
    retrained: Sequence[dict[str, float]] | None = None,
) -> Figure:
    """Test accuracy against the fraction of weights removed, one line per pruning method.

    ``retrained`` (the records of :func:`iterative_pruning`) adds the
    prune-and-retrain rounds as stars; the dense model's accuracy is the
    dashed line.
    """
    fig, axes = viz.figure(1, 1, size=(7.0, 4.2))
    ax = axes[0, 0]
    for label, curve in curves.items():
        ax.plot(100 * curve["sparsity"], 100 * curve["accuracy"], "-o", ms=4, label=label)
    title = f"dense {100 * dense_accuracy:.2f} %"
    if retrained:
        xs = [100 * r["sparsity"] for r in retrained]
        ys = [100 * r["retrained_accuracy"] for r in retrained]
        ax.plot(xs, ys, "k*-", ms=11, label="global, pruned and retrained")
        title += f", retrained {ys[-1]:.2f} % at {retrained[-1]['sparsity']:.0%}"
    ax.axhline(100 * dense_accuracy, color="0.4", ls="--", lw=1, label="dense model")
    ax.set_xlabel("weights removed (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def ticket_starts(pruned: nn.Module, seed: int | None = None) -> dict[str, LeNet300100]:
    """Two untrained networks with ``pruned``'s zero pattern as a fixed mask.

    ``"rewound"`` starts from the initial values θ0 of :func:`train_lenet` with the
    same seed (:func:`initial_lenet`), ``"random"`` from a new draw of the same
    distribution. The masks are attached with ``prune.custom_from_mask``, so
    training keeps the pruned weights at zero.
    """
    seed = config.resolve_seed(seed)
    masks = {name: (m.weight != 0).float() for name, m in prunable_layers(pruned).items()}
    starts = {"rewound": initial_lenet(seed), "random": LeNet300100(seed=seed + 1000)}
    for net in starts.values():
        for name, layer in prunable_layers(net).items():
            prune.custom_from_mask(layer, "weight", masks[name])
    return starts


def lottery_ticket(
    pruned: nn.Module, train, test, epochs: int = 2, seed: int | None = None
) -> dict[str, list[float]]:
    """Train both :func:`ticket_starts` with the dense network's recipe (Frankle and Carbin 2019).

    Returns the test accuracy after every epoch of the rewound ticket and of the
    randomly re-initialised one.
    """
    seed = config.resolve_seed(seed)
    result = {}
    for kind, net in ticket_starts(pruned, seed).items():
        result[kind] = _fit_lenet(net, train, test, epochs, 1e-3, seed, progress=False).val_accuracy
    return result


# --------------------------------------------------------------------------- latency


def cpu_latency(model: nn.Module, x: torch.Tensor, repeats: int = 20, threads: int = 1) -> float:
    """Median seconds of one forward pass of ``x`` on the CPU with ``threads`` threads."""
    model = model.eval()
    times = []
    with training.num_threads(threads), torch.inference_mode():
        model(x)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def compare_latency(
    models: dict[str, nn.Module], x: torch.Tensor, rounds: int = 5, repeats: int = 20
) -> dict[str, float]:
    """Median latency of each model on ``x`` (one thread), measured in interleaved rounds.

    Round after round every model is timed in turn, so that a burst of load on
    a shared machine slows all of them alike and the ratios stay fair.
    """
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            times[name].append(cpu_latency(model, x, repeats))
    return {name: statistics.median(t) for name, t in times.items()}


# --------------------------------------------------------------------------- sparse storage


def csr_arrays(weight: torch.Tensor, compact: bool = True) -> dict[str, torch.Tensor]:
    """Compressed sparse row (CSR) form of a 2-D weight matrix.

    ``values`` (float32): the non-zero weights, row by row; ``col_index``: the
    column of each; ``row_ptr`` (one entry per row plus one): row ``i`` owns
    ``values[row_ptr[i]:row_ptr[i+1]]``. With ``compact=True`` the indices use
    the smallest integer type that fits (int16 columns below 32,768 columns,
    int32 row pointers); with ``compact=False`` both are int64, as in
    ``torch.Tensor.to_sparse_csr``.
    """
    if weight.dim() != 2:
        raise ValueError(f"CSR needs a 2-D matrix, got shape {tuple(weight.shape)}")
    w = weight.detach().cpu()
    rows, cols = w.nonzero(as_tuple=True)  # row-major order
    cols = cols.clone()  # a view of a larger tensor, which torch.save would store whole
    counts = torch.bincount(rows, minlength=w.shape[0])
    row_ptr = torch.zeros(w.shape[0] + 1, dtype=torch.int64)
    row_ptr[1:] = torch.cumsum(counts, 0)
    if compact:
        col_dtype = torch.int16 if w.shape[1] <= 2**15 else torch.int32
        ptr_dtype = torch.int32 if len(rows) < 2**31 else torch.int64
    else:
        col_dtype = ptr_dtype = torch.int64
    return {
        "values": w[rows, cols].to(torch.float32),
        "col_index": cols.to(col_dtype),
        "row_ptr": row_ptr.to(ptr_dtype),
        "shape": torch.tensor(w.shape, dtype=torch.int32),
    }


def _dense_from_csr(arrays: dict[str, torch.Tensor]) -> torch.Tensor:
    n_rows, n_cols = (int(s) for s in arrays["shape"])
    row_ptr = arrays["row_ptr"].long()
    rows = torch.repeat_interleave(torch.arange(n_rows), row_ptr[1:] - row_ptr[:-1])
    dense = torch.zeros(n_rows, n_cols, dtype=arrays["values"].dtype)
    dense[rows, arrays["col_index"].long()] = arrays["values"]
    return dense


def save_sparse(model: nn.Module, path: str | Path, compact: bool = True) -> int:
    """Save ``model`` with every Linear weight in CSR form; returns the file's size in bytes.

    ``compact`` chooses the index types (see :func:`csr_arrays`). Other
    tensors (biases) are stored as they are.
    """
    layers = prunable_layers(model)
    weight_names = {f"{name}.weight" for name in layers}
    state = {k: v for k, v in model.state_dict().items() if k not in weight_names}
    for name, m in layers.items():
        for part, tensor in csr_arrays(m.weight, compact).items():
            state[f"{name}.weight.csr.{part}"] = tensor
    path = cache.save_atomic(state, path)
    return path.stat().st_size


def load_sparse(path: str | Path, model: nn.Module) -> nn.Module:
    """Load a file written by :func:`save_sparse` into ``model`` (same architecture)."""
    stored = torch.load(path, weights_only=True)
    state: dict[str, torch.Tensor] = {}
    csr: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in stored.items():
        if ".weight.csr." in key:
            name, part = key.split(".weight.csr.")
            csr.setdefault(name, {})[part] = tensor
        else:
            state[key] = tensor
    for name, arrays in csr.items():
        state[f"{name}.weight"] = _dense_from_csr(arrays)
    model.load_state_dict(state)
    return model


def sparse_bytes_expected(model: nn.Module, compact: bool = True) -> int:
    """Payload bytes of :func:`save_sparse`: values, column indices, row pointers, biases.

    The file adds a small container overhead (names and alignment) on top.
    """
    total = 0
    for m in prunable_layers(model).values():
        arrays = csr_arrays(m.weight, compact)
        total += sum(t.numel() * t.element_size() for t in arrays.values())
        if m.bias is not None:
            total += m.bias.numel() * m.bias.element_size()
    return total


# --------------------------------------------------------------------------- slider


def sparsity_figure(
    sparsity: float = 0.9,
    *,
    model: nn.Module,
    test,
    curves: dict[str, dict[str, np.ndarray]] | None = None,
) -> Figure:
    """Prune ``model`` globally to ``sparsity`` (no retraining) and show what is left.

    Left: accuracy against sparsity (the precomputed ``curves``, if given, and
    this setting as a star). Middle: histogram of the first layer's weights,
    kept and pruned. Right: for each of the 28x28 input pixels, how many of
    its connections to the first layer survive. The title gives the sparsity
    reached and the test accuracy.
    """
    pruned = prune_model(model, sparsity, scope="global")
    acc = training.accuracy(pruned, test)
    real = _zero_fraction([m.weight for m in prunable_layers(pruned).values()])
    w = model.fc1.weight.detach().flatten().numpy()
    kept = pruned.fc1.weight.detach() != 0
    fig, axes = viz.figure(1, 3, size=(13.0, 3.8))
    ax = axes[0, 0]
    for label, curve in (curves or {}).items():
        ax.plot(100 * curve["sparsity"], 100 * curve["accuracy"], "-o", ms=3, label=label)
    ax.plot(100 * real, 100 * acc, "k*", ms=14, label="this setting")
    ax.set(xlabel="weights removed (%)", ylabel="test accuracy (%)", xlim=(-2, 102), ylim=(0, 100))
    ax.legend(fontsize=8, loc="lower left")
    ax = axes[0, 1]
    bins = np.linspace(w.min(), w.max(), 80)
    k = kept.flatten().numpy()
    ax.hist(w[k], bins=bins, color="tab:blue", label=f"kept ({k.mean():.1%})")
    ax.hist(w[~k], bins=bins, color="tab:red", alpha=0.7, label="pruned")
    ax.set_yscale("log")
    ax.set_xlabel("fc1 weight value")
    ax.legend(fontsize=8)
    ax = axes[0, 2]
    per_pixel = kept.sum(0).reshape(28, 28).numpy()
    image = ax.imshow(per_pixel, cmap="viridis", vmin=0, vmax=kept.shape[0])
    ax.set_title(f"fc1 connections kept per input pixel (of {kept.shape[0]})", fontsize=9)
    ax.axis("off")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.suptitle(
        f"global magnitude pruning, {real:.1%} of weights removed: "
        f"test accuracy {acc:.2%} (no retraining)"
    )
    fig.tight_layout()
    return fig
