"""Exercises of notebook 06_pruning.ipynb: checkers and reference solutions.

Checked in the notebook with ``cl.exercises.check("06.N", answer)``; the lesson's code is
in :mod:`course_lib.pruning`.
"""

from __future__ import annotations

import numpy as np
import torch

from ..pruning import csr_arrays
from . import call, compare, number, pair, register, values

_GEN = torch.Generator().manual_seed(6)
_W_EX = torch.randn(40, 30, generator=_GEN)


def _solution_prune(weight, amount):
    k = round(amount * weight.numel())  # how many weights to remove
    smallest = torch.topk(weight.abs().flatten(), k, largest=False).indices
    pruned = weight.clone()
    pruned.view(-1)[smallest] = 0.0
    return pruned


@register(
    "06.1",
    title="magnitude pruning of one matrix",
    hint="Rank the entries by their absolute value |w| and zero the round(amount * n) smallest "
    "(torch.topk(..., largest=False) or torch.argsort); keep the others unchanged.",
    solution=_solution_prune,
)
def _check_prune(answer):
    for amount in (0.3, 0.75):
        expected = _solution_prune(_W_EX, amount)
        got = call(answer, _W_EX, amount)
        if not isinstance(got, torch.Tensor):
            return f"return a tensor of the same shape as the weight, got {type(got).__name__}."
        problem = compare(got, expected, name=f"your pruned matrix (amount={amount})")
        if problem is None:
            continue
        if values(got, expected) is not None:
            zero = float((got == 0).float().mean())
            if abs(zero - amount) > 0.01:
                return (
                    f"with amount={amount} you zeroed {zero:.0%} of the entries, not {amount:.0%}."
                )
            removed = _W_EX[got == 0]
            if (removed < 0).float().mean() > 0.9:
                return "you ranked by the signed value w: rank by the magnitude |w| instead."
            if removed.abs().mean() > _W_EX.abs().mean():
                return "you removed large weights: prune the smallest |w|, keep the largest."
        return problem
    return None


_W_CSR = torch.where(torch.rand(6, 9, generator=_GEN) < 0.3, torch.randn(6, 9, generator=_GEN), 0.0)
_W_CSR[2] = 0.0  # an empty row, to catch off-by-one row pointers


def _solution_csr(weight):
    values, col_index, row_ptr = [], [], [0]
    for row in weight:
        for j, w in enumerate(row.tolist()):
            if w != 0:
                values.append(w)
                col_index.append(j)
        row_ptr.append(len(values))  # where the next row starts
    return torch.tensor(values), torch.tensor(col_index), torch.tensor(row_ptr)


@register(
    "06.2",
    title="compressed sparse row (CSR) storage",
    hint="Walk the rows in order; append each non-zero and its column; after each row append "
    "the running count of non-zeros to row_ptr, which starts with 0 (length = rows + 1).",
    solution=_solution_csr,
)
def _check_csr(answer):
    reference = csr_arrays(_W_CSR, compact=False)  # equals torch's to_sparse_csr()
    expected = (reference["values"], reference["col_index"], reference["row_ptr"])
    got = pair(call(answer, _W_CSR), 3, "three tensors: (values, col_index, row_ptr)")
    for name, g, e in zip(("values", "col_index", "row_ptr"), got, expected, strict=True):
        problem = compare(g, e, name=f"your {name}")
        if problem is None:
            continue
        arr = values(g, g)  # any length: compared with the typical mistakes below
        if arr is None or arr.ndim != 1:
            return problem
        if name == "row_ptr":
            per_row = np.diff(e.numpy().astype(float))
            if len(arr) == len(per_row) and np.allclose(arr, per_row):
                return "row_ptr holds running totals (cumulative counts), not per-row counts."
            if len(arr) == len(e) - 1:
                return "row_ptr needs rows + 1 entries: start it with 0 (or end it with the total)."
        if name == "values":
            by_column = csr_arrays(_W_CSR.t(), compact=False)["values"]
            if len(arr) == len(by_column) and np.allclose(arr, by_column):
                return "you walked the matrix column by column: CSR goes row by row."
        return problem
    return None


def _solution_remaining(amounts):
    remaining = 1.0
    for a in amounts:
        remaining *= 1.0 - a  # each call prunes a fraction of what is left
    return remaining


@register(
    "06.3",
    title="repeated pruning compounds",
    hint="Each call removes its fraction of the weights that are still there, so the kept "
    "fractions multiply: (1 - a1) * (1 - a2) * ...",
    solution=_solution_remaining,
)
def _check_remaining(answer):
    for amounts in ([0.5, 0.5], [0.2, 0.5, 0.75], [0.9]):
        expected = _solution_remaining(amounts)
        got = number(call(answer, list(amounts)), "your fraction kept")
        if not np.isclose(got, expected):
            if np.isclose(got, max(0.0, 1.0 - sum(amounts))):
                return (
                    f"for {amounts} you subtracted the amounts from 1: each call prunes a "
                    "fraction of the survivors, so the kept fractions multiply."
                )
            if np.isclose(got, 1.0 - _solution_remaining(amounts)):
                return f"for {amounts} you returned the fraction removed; return the fraction kept."
            return f"for amounts {amounts} you got {got:.4g}, expected {expected:.4g}."
    return None
