"""Exercises of notebook 14_rnn_sentiment.ipynb: checkers and reference solutions.

Checked in the notebook with ``cl.exercises.check("14.N", answer)``; the lesson's code is
in :mod:`course_lib.rnn`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..rnn import CELLS, GATES, lstm_step
from . import call, compare, integer, pair, register, values

_EX_GEN = torch.Generator().manual_seed(14)
_EX_LSTM_IN, _EX_LSTM_H = 5, 3
_EX_X = torch.randn(4, _EX_LSTM_IN, generator=_EX_GEN, dtype=torch.float64)
_EX_H = torch.randn(4, _EX_LSTM_H, generator=_EX_GEN, dtype=torch.float64)
_EX_C = torch.randn(4, _EX_LSTM_H, generator=_EX_GEN, dtype=torch.float64)
_EX_W = {
    "w_ih": torch.randn(4 * _EX_LSTM_H, _EX_LSTM_IN, generator=_EX_GEN, dtype=torch.float64),
    "w_hh": torch.randn(4 * _EX_LSTM_H, _EX_LSTM_H, generator=_EX_GEN, dtype=torch.float64),
    "b_ih": torch.randn(4 * _EX_LSTM_H, generator=_EX_GEN, dtype=torch.float64),
    "b_hh": torch.randn(4 * _EX_LSTM_H, generator=_EX_GEN, dtype=torch.float64),
}


def _solution_lstm_step(x, h, c, w_ih, w_hh, b_ih, b_hh):
    z = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh  # all four gates at once: (B, 4H)
    i, f, g, o = z.chunk(4, dim=-1)  # PyTorch's order: input, forget, cell, output
    c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h_next = torch.sigmoid(o) * torch.tanh(c_next)
    return h_next, c_next


@register(
    "14.1",
    title="one LSTM step from the stacked weights",
    hint="z = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh, then i, f, g, o = z.chunk(4, dim=-1); "
    "c' = sigmoid(f) * c + sigmoid(i) * tanh(g) and h' = sigmoid(o) * tanh(c').",
    solution=_solution_lstm_step,
)
def _check_lstm_step(answer):
    h_exp, c_exp = _solution_lstm_step(_EX_X, _EX_H, _EX_C, **_EX_W)
    got = pair(call(answer, _EX_X, _EX_H, _EX_C, *_EX_W.values()), 2, "a pair (h_next, c_next)")
    c_got = values(got[1], c_exp)
    for order in ("ifog", "fiog", "igfo", "oigf"):
        _, c_alt = lstm_step(_EX_X, _EX_H, _EX_C, **_EX_W, order=order)
        if c_got is not None and np.allclose(c_got, c_alt.numpy()):
            return (
                f"your cell state matches the gate order {order!r}: PyTorch stacks the "
                "blocks as input, forget, cell candidate (g), output."
            )
    problem = compare(got[1], c_exp, name="your c_next")
    if problem:
        return (
            problem + " The new cell state is f * c + i * g (check the gate order and both biases)."
        )
    problem = compare(got[0], h_exp, name="your h_next")
    if problem:
        return problem + " The new hidden state is o * tanh(c_next), from the *new* cell state."
    return None


_EX_GEN2 = torch.Generator().manual_seed(142)
_EX_SEQ = torch.randn(7, 3, generator=_EX_GEN2, dtype=torch.float64)  # 7 steps, 3 inputs
_EX_RNN = {
    "w_ih": torch.randn(5, 3, generator=_EX_GEN2, dtype=torch.float64) * 0.6,
    "w_hh": torch.randn(5, 5, generator=_EX_GEN2, dtype=torch.float64) * 0.4,
    "b_ih": torch.randn(5, generator=_EX_GEN2, dtype=torch.float64) * 0.1,
    "b_hh": torch.randn(5, generator=_EX_GEN2, dtype=torch.float64) * 0.1,
}


def _solution_rnn(x, w_ih, w_hh, b_ih, b_hh):
    h = torch.zeros(w_hh.shape[0], dtype=x.dtype)  # h_0 = 0
    outputs = []
    for x_t in x:  # the same four tensors at every step
        h = torch.tanh(w_ih @ x_t + b_ih + w_hh @ h + b_hh)
        outputs.append(h)
    return torch.stack(outputs)


def _torch_rnn_reference() -> torch.Tensor:
    """``nn.RNN`` with the exercise's weights: the checker's ground truth."""
    layer = nn.RNN(3, 5).double()
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            key = name.replace("weight", "w").replace("bias", "b").replace("_l0", "")
            getattr(layer, name).copy_(_EX_RNN[key])
        return layer(_EX_SEQ)[0]


@register(
    "14.2",
    title="an RNN unrolled by hand",
    hint="Start from h = 0 and loop over the steps: h = tanh(W_ih x_t + b_ih + W_hh h + b_hh), "
    "with the SAME weights at every step; collect every h and stack them into a (T, H) tensor.",
    solution=_solution_rnn,
)
def _check_rnn(answer):
    expected = _torch_rnn_reference()
    got = call(answer, _EX_SEQ, *_EX_RNN.values())  # w_ih, w_hh, b_ih, b_hh
    problem = compare(got, expected, name="your hidden states", rtol=1e-6)
    if problem is None:
        return None
    last = values(got, expected[-1])
    if last is not None and np.allclose(last, expected[-1].numpy()):
        return "return the hidden state of every step (T rows, in order), not only the last one."
    arr = values(got, expected)
    if arr is not None:
        w = _EX_RNN
        no_memory = torch.tanh(_EX_SEQ @ w["w_ih"].T + w["b_ih"] + w["b_hh"])
        if np.allclose(arr, no_memory.numpy()):
            return "every step ignores the previous hidden state: feed h back in through W_hh."
        no_b_hh = _solution_rnn(
            _EX_SEQ, w["w_ih"], w["w_hh"], w["b_ih"], torch.zeros_like(w["b_hh"])
        )
        if np.allclose(arr, no_b_hh.numpy()):
            return "nn.RNN adds two biases, b_ih and b_hh: one of them is missing."
    return problem


def _solution_count(cell, input_size, hidden_size):
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    # per gate: W_ih (hidden x input), W_hh (hidden x hidden), b_ih and b_hh (hidden each)
    return gates * (hidden_size * input_size + hidden_size * hidden_size + 2 * hidden_size)


@register(
    "14.3",
    title="counting the weights of a recurrent layer",
    hint="Per gate: a (hidden x input) matrix, a (hidden x hidden) matrix and two bias vectors; "
    "an RNN has 1 gate block, a GRU 3, an LSTM 4.",
    solution=_solution_count,
)
def _check_count(answer):
    for cell, n_in, n_h in (("lstm", 128, 64), ("gru", 50, 20), ("rnn", 10, 7), ("lstm", 3, 5)):
        expected = sum(p.numel() for p in CELLS[cell](n_in, n_h).parameters())
        got = integer(call(answer, cell, n_in, n_h), f"your count for {cell}({n_in}, {n_h})")
        if got == expected:
            continue
        g = GATES[cell]
        if got == g * (n_h * n_in + n_h * n_h + n_h):
            return f"for {cell}({n_in}, {n_h}): PyTorch keeps two bias vectors per gate, b_ih and b_hh."
        if got == n_h * n_in + n_h * n_h + 2 * n_h and g > 1:
            return f"for {cell}({n_in}, {n_h}): you counted one gate, but a {cell.upper()} has {g}."
        if got == g * (n_h * n_in + 2 * n_h) or got == g * (n_h * n_in + n_h):
            return f"for {cell}({n_in}, {n_h}): the recurrent matrix W_hh (hidden x hidden) is missing."
        return f"for {cell}({n_in}, {n_h}) you got {got}, expected {expected}."
    return None
