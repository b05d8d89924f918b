"""Notebook 14: recurrent networks on MR sentence polarity, and the weights of their cells.

In the notebook's order: the weights of a cell (:func:`lstm_gates`, :func:`lstm_step`,
:func:`gru_step`, :func:`fold_biases`); one set of weights for every step
(:func:`rnn_unroll`, :func:`per_step_gradients`); initialisation (:func:`orthogonal_qr`,
:func:`recurrence_figure`, :func:`forget_gate_memory`); exploding gradients and clipping
(:func:`gradient_through_time_figure`, :func:`clipping_run`, with :func:`clip_grad_norm`
from notebook 11); the classifier (:class:`SentenceRNN` over packed sequences,
:func:`train_sentence_model`, :func:`comparison_figure`; the TF-IDF baseline is
:func:`course_lib.text.tfidf_baseline`).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from . import config, data, training, viz
from .gradient_flow import clip_grad_norm  # written from scratch in notebook 11
from .text import Vocabulary, length_bucket_loader

__all__ = [
    "CELLS",
    "GATES",
    "LSTM_GATE_ORDER",
    "PUBLISHED_MR",
    "SentenceRNN",
    "cell_weight_table",
    "clip_grad_norm",
    "clipping_run",
    "comparison_figure",
    "expected_parameter_count",
    "exploded_rnn",
    "fold_biases",
    "forget_bias_",
    "forget_gate_memory",
    "gradient_norm_through_time",
    "gradient_through_time_figure",
    "gru_step",
    "logits_reading_padding",
    "lstm_gates",
    "lstm_step",
    "orthogonal_qr",
    "orthogonal_recurrent_",
    "per_step_gradients",
    "recurrence_figure",
    "recurrence_jacobian",
    "recurrent_matrix",
    "rnn_unroll",
    "train_sentence_model",
]

#: The recurrent layers of PyTorch used here, by short name.
CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
#: Number of gate blocks stacked in each cell's weight matrices.
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
#: The order of the four LSTM blocks in ``weight_ih_l0`` / ``weight_hh_l0`` (PyTorch docs).
LSTM_GATE_ORDER = ("input", "forget", "cell", "output")

#: Published MR accuracies (%, 10-fold cross-validation), Kim (2014), Table 2.
PUBLISHED_MR = {
    "CNN-rand (Kim 2014)": 76.1,
    "CNN-static (Kim 2014)": 81.0,
    "CNN-non-static (Kim 2014)": 81.5,
    "NBSVM (Wang & Manning 2012)": 79.4,
}


# --------------------------------------------------------------------------- weights of a cell


def cell_weight_table(module: nn.Module) -> list[tuple[str, tuple[int, ...], int]]:
    """``(name, shape, count)`` of every parameter of a recurrent layer (or any module)."""
    return [(name, tuple(p.shape), p.numel()) for name, p in module.named_parameters()]


def expected_parameter_count(cell: str, input_size: int, hidden_size: int) -> int:
    """Parameters of a one-layer, one-direction ``nn.RNN``/``nn.LSTM``/``nn.GRU``: per gate
    block (1, 4 or 3) a ``(hidden, input)`` and a ``(hidden, hidden)`` matrix and two biases."""
    g = GATES[cell]
    return g * (hidden_size * input_size + hidden_size * hidden_size + 2 * hidden_size)


def lstm_gates(lstm: nn.LSTM, layer: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    """``{gate: {"w_ih", "w_hh", "b_ih", "b_hh"}}``: views of an ``nn.LSTM`` layer's stacked
    weights, rows ``0:H`` input gate, ``H:2H`` forget, ``2H:3H`` cell candidate, ``3H:4H`` output."""
    parts = {
        "w_ih": getattr(lstm, f"weight_ih_l{layer}"),
        "w_hh": getattr(lstm, f"weight_hh_l{layer}"),
        "b_ih": getattr(lstm, f"bias_ih_l{layer}"),
        "b_hh": getattr(lstm, f"bias_hh_l{layer}"),
    }
    chunks = {name: p.detach().chunk(4, dim=0) for name, p in parts.items()}
    return {
        gate: {name: chunks[name][i] for name in parts} for i, gate in enumerate(LSTM_GATE_ORDER)
    }


def lstm_step(x, h, c, w_ih, w_hh, b_ih, b_hh, order: str = "ifgo"):
    """One LSTM step by hand from the stacked weights: returns ``(h_next, c_next)``.

    With the blocks ``i, f, g, o`` read in ``order`` (PyTorch's is ``"ifgo"``):
    ``c_next = sigmoid(f) * c + sigmoid(i) * tanh(g)``, ``h_next = sigmoid(o) * tanh(c_next)``.
    """
    if sorted(order) != sorted("ifgo"):
        raise ValueError(f"order must be a permutation of 'ifgo', got {order!r}")
    z = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    blocks = dict(zip(order, z.chunk(4, dim=-1), strict=True))
    i, f = torch.sigmoid(blocks["i"]), torch.sigmoid(blocks["f"])
    g, o = torch.tanh(blocks["g"]), torch.sigmoid(blocks["o"])
    c_next = f * c + i * g
    return o * torch.tanh(c_next), c_next


def gru_step(x, h, w_ih, w_hh, b_ih, b_hh, reset_after: bool = True):
    """One GRU time step by hand from the stacked weights (blocks r, z, n): returns ``h_next``.

    ``reset_after=True`` is PyTorch's (and cuDNN's) GRU, with the reset gate
    applied *after* the recurrent matrix product::

        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))

    ``reset_after=False`` is the GRU of Cho et al. (2014), published version,
    which resets the state *before* the product: ``tanh(W_in x + b_in + W_hn (r * h) + b_hn)``.
    Both end with ``h_next = (1 - z) * n + z * h``.
    """
    i_r, i_z, i_n = (x @ w_ih.T + b_ih).chunk(3, dim=-1)
    h_r, h_z, h_n = (h @ w_hh.T + b_hh).chunk(3, dim=-1)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    if reset_after:
        n = torch.tanh(i_n + r * h_n)
    else:
        w_hn, b_hn = w_hh.chunk(3, dim=0)[2], b_hh.chunk(3)[2]
        n = torch.tanh(i_n + (r * h) @ w_hn.T + b_hn)
    return (1 - z) * n + z * h


def fold_biases(layer: nn.RNNBase, blocks: Sequence[int] | None = None) -> nn.RNNBase:
    """A copy of a one-layer recurrent ``layer`` whose ``b_hh`` is added into ``b_ih`` and zeroed.

    ``blocks`` (gate block indices, default all) limits the folding to those
    gates. Where the two biases are simply summed (every RNN and LSTM gate, the
    GRU's r and z gates) the copy computes exactly the same function; inside the
    GRU's new-state block, ``b_hn`` is multiplied by the reset gate, so folding
    it changes the output.
    """
    folded = copy.deepcopy(layer)
    hidden = folded.hidden_size
    blocks = range(folded.weight_hh_l0.shape[0] // hidden) if blocks is None else blocks
    with torch.no_grad():
        for k in blocks:
            rows = slice(k * hidden, (k + 1) * hidden)
            folded.bias_ih_l0[rows] += folded.bias_hh_l0[rows]
            folded.bias_hh_l0[rows] = 0.0
    return folded


# --------------------------------------------------------------------------- shared weights over time


def rnn_unroll(rnn: nn.RNN, x: torch.Tensor, h0: torch.Tensor | None = None):
    """Run a one-layer ``nn.RNN`` (``batch_first``) by hand, the same weights at every step:
    ``h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``. Returns ``(outputs, h_T)`` like ``rnn(x)``."""
    act = torch.tanh if rnn.nonlinearity == "tanh" else torch.relu
    batch, steps, _ = x.shape
    h = x.new_zeros(batch, rnn.hidden_size) if h0 is None else h0
    outputs = []
    for t in range(steps):
        h = act(
            x[:, t] @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + h @ rnn.weight_hh_l0.T + rnn.bias_hh_l0
        )
        outputs.append(h)
    return torch.stack(outputs, dim=1), h


def per_step_gradients(rnn: nn.RNN, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The gradient of ``weight_hh_l0`` (loss: mean squared final state) split per time step.

    The unrolled network uses a separate *copy* of ``W_hh`` at each step, so autograd
    reports each step's share; returns them and the gradient ``nn.RNN`` gives its one matrix.
    """
    act = torch.tanh if rnn.nonlinearity == "tanh" else torch.relu
    copies = [rnn.weight_hh_l0.detach().clone().requires_grad_(True) for _ in range(x.shape[1])]
    h = x.new_zeros(x.shape[0], rnn.hidden_size)
    with torch.no_grad():
        w_ih, b_ih, b_hh = rnn.weight_ih_l0.clone(), rnn.bias_ih_l0.clone(), rnn.bias_hh_l0.clone()
    for t, w_hh in enumerate(copies):
        h = act(x[:, t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
    h.pow(2).mean().backward()
    rnn.zero_grad()
    _, h_n = rnn(x)
    h_n[0].pow(2).mean().backward()
    shared = rnn.weight_hh_l0.grad.detach().clone()
    rnn.zero_grad()
    return [w.grad for w in copies], shared


# --------------------------------------------------------------------------- initialisation


def orthogonal_qr(
    rows: int,
    cols: int | None = None,
    gain: float = 1.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """A random (semi-)orthogonal matrix from scratch, equal to ``nn.init.orthogonal_``'s.

    ``A = QR`` for a Gaussian ``A``; keep ``Q`` with each column times the sign of
    ``R``'s diagonal entry, without which ``Q`` is not *uniformly* distributed
    (Mezzadri 2007). Wide matrices are built transposed.
    """
    cols = rows if cols is None else cols
    a = torch.empty(rows, cols, dtype=dtype).normal_(0, 1, generator=generator)
    if rows < cols:
        a = a.T
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r))  # column j times sign(R_jj)
    if rows < cols:
        q = q.T
    return gain * q


def orthogonal_recurrent_(rnn: nn.RNNBase, gain: float = 1.0) -> nn.RNNBase:
    """Initialise each ``(hidden, hidden)`` gate block of every ``weight_hh_l*`` orthogonally."""
    with torch.no_grad():
        for name, p in rnn.named_parameters():
            if name.startswith("weight_hh"):
                for block in p.chunk(p.shape[0] // p.shape[1], dim=0):
                    nn.init.orthogonal_(block, gain=gain)
    return rnn


def recurrent_matrix(n: int, init: str = "orthogonal", gain: float = 1.0, seed: int = 0):
    """An ``(n, n)`` float64 matrix, ``"orthogonal"`` or ``"gaussian"`` N(0, gain²/n): both have
    expected squared row norm ``gain²``, but the Gaussian's singular values spread from 0 to ~2 gain."""
    g = torch.Generator().manual_seed(seed)
    if init == "orthogonal":
        return orthogonal_qr(n, generator=g, dtype=torch.float64) * gain
    if init == "gaussian":
        return torch.randn(n, n, generator=g, dtype=torch.float64) * gain / math.sqrt(n)
    raise ValueError(f"init must be 'orthogonal' or 'gaussian', got {init!r}")


def recurrence_jacobian(w: torch.Tensor, steps: int, n_states: int = 32, seed: int = 0) -> dict:
    """``{"norms": (steps + 1, n_states), "singular_values"}``: the norms of ``h_t = W h_{t-1}``
    from ``n_states`` random unit vectors, and the singular values of ``W^steps = dh_T/dh_0``."""
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(w.shape[0], n_states, generator=g, dtype=w.dtype)
    h = h / h.norm(dim=0)
    norms = [h.norm(dim=0)]
    for _ in range(steps):
        h = w @ h
        norms.append(h.norm(dim=0))
    sv = torch.linalg.svdvals(torch.linalg.matrix_power(w, steps))
    return {"norms": torch.stack(norms).numpy(), "singular_values": sv.numpy()}


def recurrence_figure(steps: int = 50, gain: float = 1.0, n: int = 64) -> Figure:
    """Orthogonal vs Gaussian ``W`` over ``steps`` steps of ``h_t = W h_{t-1}``: the norms of
    ``h_t`` (left) and the singular values of ``W^steps`` (right, their range in the title)."""
    fig, axes = viz.figure(1, 2, size=(11.5, 3.9))
    spans = {}
    for init, colour in (("orthogonal", "tab:blue"), ("gaussian", "tab:red")):
        with training.num_threads(1):  # tiny matrices: extra threads only wait for each other
            res = recurrence_jacobian(recurrent_matrix(n, init, gain), steps)
        sv = res["singular_values"]
        axes[0, 0].semilogy(res["norms"], color=colour, alpha=0.35, lw=1)
        axes[0, 0].plot([], [], color=colour, label=init)
        axes[0, 1].semilogy(np.arange(1, n + 1), np.maximum(sv, 1e-18), "o-", ms=2, color=colour)
        spans[init] = (sv.min(), sv.max())
    axes[0, 0].set(xlabel="time step t", ylabel="‖h_t‖ (start: unit vectors)")
    axes[0, 0].legend(fontsize=8)
    axes[0, 1].set(xlabel="index (sorted)", ylabel=f"singular value of W^{steps}")
    o, gs = spans["orthogonal"], spans["gaussian"]
    fig.suptitle(
        f"{steps} steps, gain {gain:.2f}: singular values of W^{steps} "
        f"orthogonal {o[0]:.3g} to {o[1]:.3g}, Gaussian {gs[0]:.1e} to {gs[1]:.1e}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def forget_bias_(lstm: nn.LSTM, value: float = 1.0) -> nn.LSTM:
    """Set the forget-gate bias ``b_if + b_hf`` of every layer and direction of ``lstm`` to
    ``value``: the ``H:2H`` slice of ``b_ih`` to ``value``, that of ``b_hh`` to 0."""
    h = lstm.hidden_size
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            if name.startswith("bias_ih"):
                p[h : 2 * h] = value
            elif name.startswith("bias_hh"):
                p[h : 2 * h] = 0.0
    return lstm


def forget_gate_memory(lstm: nn.LSTM, steps: int = 20, batch: int = 64, seed: int = 0) -> dict:
    """How much of its cell state a (one-layer) ``lstm`` keeps, on random Gaussian inputs.

    Runs ``steps`` steps by hand and returns ``{"forget": mean forget-gate
    value, "kept": geometric mean over batch and units of prod_t f_t}``. That
    product is ``dc_T/dc_0`` along the cell path: the share of the initial cell
    content, and of a gradient flowing back along the cell, left after ``steps`` steps.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(steps, batch, lstm.input_size, generator=g)
    h = c = torch.zeros(batch, lstm.hidden_size)
    weights = (lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)
    forget, log_kept = [], torch.zeros(batch, lstm.hidden_size, dtype=torch.float64)
    with torch.no_grad():
        for x_t in x:
            z = x_t @ weights[0].T + weights[2] + h @ weights[1].T + weights[3]
            f = torch.sigmoid(z.chunk(4, dim=-1)[1])
            forget.append(f.mean().item())
            log_kept += f.double().log()
            h, c = lstm_step(x_t, h, c, *weights)
    return {"forget": float(np.mean(forget)), "kept": float(log_kept.mean().exp())}


# --------------------------------------------------------------------------- gradients through time


def gradient_norm_through_time(
    lengths: Sequence[int], gain: float = 1.0, seed: int | None = None
) -> np.ndarray:
    """Norm of the gradient of ``weight_hh`` of a tanh ``nn.RNN`` for each sequence length.

    ``nn.RNN(16, 64)`` with ``W_hh`` orthogonal times ``gain`` (all singular values
    equal ``gain``), the loss the mean squared state at step ``T`` of 8 Gaussian
    sequences; one forward pass over the longest serves every length (its first ``T`` steps).
    """
    torch.manual_seed(config.resolve_seed(seed))
    rnn = nn.RNN(16, 64, batch_first=True)
    with torch.no_grad():
        nn.init.orthogonal_(rnn.weight_hh_l0, gain=gain)
    x = torch.randn(8, int(max(lengths)), 16)
    states, _ = rnn(x)
    norms = []
    for steps in lengths:
        loss = states[:, int(steps) - 1].pow(2).mean()
        (grad,) = torch.autograd.grad(loss, rnn.weight_hh_l0, retain_graph=True)
        norms.append(grad.norm().item())
    return np.asarray(norms)


def gradient_through_time_figure(gain: float = 2.0, max_len: int = 60, clip: float = 1.0) -> Figure:
    """Gradient norm vs sequence length at ``gain`` and at gain 1, with the clipping threshold;
    the title gives the norm at the longest length and the factor clipping scales it by."""
    lengths = np.unique(np.linspace(2, max_len, 15).astype(int))  # T=1: W_hh meets h_0 = 0 only
    with training.num_threads(1):  # a small RNN: extra threads only wait for each other
        norms = gradient_norm_through_time(lengths, gain=gain)
        reference = gradient_norm_through_time(lengths, gain=1.0)
    fig, axes = viz.figure(size=(6.8, 4.0))
    ax = axes[0, 0]
    ax.semilogy(lengths, norms, "o-", ms=3, color="tab:red", label=f"gain {gain:.2f}")
    ax.semilogy(lengths, reference, "s-", ms=3, color="tab:blue", label="gain 1 (orthogonal)")
    ax.axhline(clip, color="k", ls="--", lw=1, label=f"clip threshold {clip:g}")
    ax.set(xlabel="sequence length T", ylabel="‖∂L/∂W_hh‖")
    ax.legend(fontsize=8)
    scale = min(1.0, clip / (norms[-1] + 1e-6))
    ax.set_title(
        f"T={lengths[-1]}, gain {gain:.2f}: gradient norm {norms[-1]:.3g}, clipping scales it by {scale:.2g}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def exploded_rnn(gain: float = 2.0, steps: int = 100, seed: int | None = None) -> nn.RNN:
    """A tanh ``nn.RNN(16, 64)`` with recurrent singular values ``gain`` and, in ``.grad``, the
    gradient of the mean squared final state of 8 Gaussian sequences of ``steps`` steps."""
    torch.manual_seed(config.resolve_seed(seed))
    layer = nn.RNN(16, 64, batch_first=True)
    nn.init.orthogonal_(layer.weight_hh_l0, gain=gain)
    layer(torch.randn(8, steps, 16))[1].pow(2).mean().backward()
    return layer


def clipping_run(
    max_norm: float | None, steps: int = 80, lr: float = 0.1, seed: int | None = None
) -> dict:
    """Train a ReLU RNN with plain SGD, clipping the gradient norm at ``max_norm`` (None: never).

    ``nn.RNN(4, 32, nonlinearity="relu")`` with an orthogonal recurrent matrix
    reads 40 Gaussian steps and must output the sum of the first input feature
    over the last 5 steps (mean squared error; predicting 0 scores about 5).
    Returns ``{"loss": per-step training loss, "norm": per-step gradient norm
    before clipping, "val_loss": loss on 512 new sequences, "baseline": the
    loss of predicting 0 on them}``.
    """
    seed = config.resolve_seed(seed)
    torch.manual_seed(seed)
    rnn, head = nn.RNN(4, 32, batch_first=True, nonlinearity="relu"), nn.Linear(32, 1)
    nn.init.orthogonal_(rnn.weight_hh_l0)
    params = [*rnn.parameters(), *head.parameters()]
    optimizer = torch.optim.SGD(params, lr=lr)
    g = torch.Generator().manual_seed(seed)

    def batch(n):
        x = torch.randn(n, 40, 4, generator=g)
        return x, x[:, -5:, 0].sum(1, keepdim=True)

    def loss_on(x, y):
        return nn.functional.mse_loss(head(rnn(x)[1][0]), y)

    x_val, y_val = batch(512)
    losses, norms = [], []
    for _ in range(steps):
        loss = loss_on(*batch(32))
        optimizer.zero_grad()
        loss.backward()
        norms.append(clip_grad_norm(params, math.inf if max_norm is None else max_norm))
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():
        val = loss_on(x_val, y_val).item()
    result = {"loss": np.array(losses), "norm": np.array(norms), "val_loss": val}
    return result | {"baseline": y_val.pow(2).mean().item()}


# --------------------------------------------------------------------------- the classifier


class SentenceRNN(nn.Module):
    """Embedding, a (bidirectional) recurrent layer, the maximum over time, and a linear head.

    ``x`` is a ``(B, L)`` tensor of token ids right-padded with 0. The sentences are
    *packed* (``pack_padded_sequence``): each direction reads only the real tokens,
    never the padding. The recurrent matrices start orthogonal, gate by gate, and an
    LSTM's forget-gate bias at ``forget_bias``.
    """

    def __init__(
        self,
        vocab_size: int,
        cell: str = "gru",
        embed_dim: int = 128,
        hidden_size: int = 128,
        bidirectional: bool = True,
        forget_bias: float = 1.0,
    ):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
        self.cell = cell
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=Vocabulary.PAD)
        self.rnn = CELLS[cell](
            embed_dim, hidden_size, batch_first=True, bidirectional=bidirectional
        )
        orthogonal_recurrent_(self.rnn)
        if cell == "lstm":
            forget_bias_(self.rnn, forget_bias)
        self.dropout = nn.Dropout(0.5)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lengths = (x != Vocabulary.PAD).sum(1).clamp(min=1)
        x = x[:, : int(lengths.max())]
        packed = nn.utils.rnn.pack_padded_sequence(
            self.dropout(self.embedding(x)), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        states, _ = self.rnn(packed)
        states, _ = nn.utils.rnn.pad_packed_sequence(
            states, batch_first=True, padding_value=float("-inf")
        )
        sentence = states.max(dim=1).values  # (B, directions * hidden)
        return self.head(self.dropout(sentence))


def logits_reading_padding(model: SentenceRNN, x: torch.Tensor) -> torch.Tensor:
    """The logits ``model`` would give if its recurrent layer read the padding as tokens.

    The same weights, without packing: both directions run over all ``L``
    positions of the padded batch and the maximum is taken over all of them.
    """
    model.eval()
    with torch.no_grad():
        states, _ = model.rnn(model.embedding(x))
        return model.head(states.max(dim=1).values)


class _KeepBest:
    """``fit`` callback: keep a copy of the weights of the epoch with the best validation accuracy."""

    def __init__(self):
        self.best, self.epoch, self.state = -1.0, -1, None

    def __call__(self, epoch: int, model: nn.Module, history: training.History) -> None:
        if history.val_accuracy and history.val_accuracy[-1] > self.best:
            self.best, self.epoch = history.val_accuracy[-1], epoch
            self.state = copy.deepcopy(model.state_dict())


def _adam(params, lr: float) -> torch.optim.Optimizer:
    """Adam, fused into one kernel where PyTorch supports it (about 10x faster on CPU here)."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr)


def train_sentence_model(
    cell: str,
    splits: dict[str, data.Dataset],
    epochs: int = 10,
    n_train: int | None = None,
    size: int = 128,
    lr: float = 3e-3,
    max_norm: float = 5.0,
    seed: int | None = None,
    progress: bool = True,
) -> dict:
    """Train a :class:`SentenceRNN` (embedding and hidden state of ``size``) on ``splits["train"]``.

    Vocabulary from the training sentences only; batches of 64 sentences of similar
    length; Adam, its rate decaying along a half cosine; the gradient norm clipped at
    ``max_norm`` before every step (``grad_norms``: the norms before clipping). The
    epoch with the best ``splits["val"]`` accuracy is kept and scored on ``splits["test"]``.
    """
    seed = config.resolve_seed(seed)
    train = splits["train"].subset(n_train, seed=seed)
    vocab = Vocabulary.build(train.x, min_freq=2)
    x_train, x_val, x_test = (
        vocab.encode(ds.x, 60) for ds in (train, splits["val"], splits["test"])
    )
    torch.manual_seed(seed)
    model = SentenceRNN(len(vocab), cell, size, size)
    keep, norms, params = _KeepBest(), [], list(model.parameters())
    optimizer = _adam(params, lr)
    optimizer.register_step_pre_hook(lambda *_: norms.append(clip_grad_norm(params, max_norm)))
    start = time.perf_counter()
    history = training.fit(
        model,
        length_bucket_loader(x_train, train.y, 64, seed),
        epochs=epochs,
        optimizer=optimizer,
        scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs),
        val=(x_val, splits["val"].y),
        callbacks=[keep],
        progress=progress,
        seed=seed,
    )
    model.load_state_dict(keep.state)
    test = training.evaluate(model, (x_test, splits["test"].y))
    return {
        "cell": cell,
        "model": model,
        "vocab": vocab,
        "history": history,
        "best_epoch": keep.epoch,
        "val_accuracy": keep.best,
        "test_accuracy": test["accuracy"],
        "grad_norms": np.array(norms),
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "n_train": len(train),
        "seconds": time.perf_counter() - start,
    }


def comparison_figure(results: dict[str, dict], baseline: float | None = None) -> Figure:
    """Validation accuracy per epoch of each cell, and test accuracies (``baseline``: the
    :func:`course_lib.text.tfidf_baseline` on the same split) beside the published MR results."""
    fig, axes = viz.figure(1, 2, size=(13.0, 4.0))
    for name, res in results.items():
        acc = np.asarray(res["history"].val_accuracy) * 100
        axes[0, 0].plot(np.arange(1, len(acc) + 1), acc, "o-", ms=3, label=name.upper())
    axes[0, 0].set(xlabel="epoch", ylabel="validation accuracy (%)")
    axes[0, 0].legend(fontsize=8)
    bars = [
        (f"bi-{n.upper()} (this split)", r["test_accuracy"] * 100, "tab:blue")
        for n, r in results.items()
    ]
    if baseline is not None:
        bars.append(("TF-IDF bigrams + LR (this split)", baseline * 100, "tab:cyan"))
    bars += [(f"{k}, 10-fold CV", v, "tab:grey") for k, v in PUBLISHED_MR.items()]
    names, values, colours = zip(*bars[::-1], strict=True)
    ax = axes[0, 1]
    ax.barh(names, values, color=colours)
    for i, v in enumerate(values):
        ax.text(v + 0.3, i, f"{v:.1f}", va="center", fontsize=8)
    ax.set_xlim(50, 85)
    ax.set_xlabel("MR accuracy (%)")
    best = max(results, key=lambda n: results[n]["test_accuracy"])
    fig.suptitle(
        f"best: {best.upper()} {results[best]['test_accuracy']:.1%} on the held-out test split "
        f"(Kim 2014 CNN-rand: 76.1 %, 10-fold CV)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
