"""Exercises of notebook 11_gradient_flow.ipynb: checkers and reference solutions.

Checked in the notebook with ``cl.exercises.check("11.N", answer)``; the lesson's code is
in :mod:`course_lib.gradient_flow`.
"""

from __future__ import annotations

import numpy as np
import torch

from . import call, compare, number, register

_GEN = torch.Generator().manual_seed(11)
_GRADS_BIG = [torch.randn(4, 3, generator=_GEN) * 5, torch.randn(3, generator=_GEN) * 5]
_GRADS_SMALL = [torch.randn(2, 2, generator=_GEN) * 0.01, torch.randn(5, generator=_GEN) * 0.01]
_W_BEFORE = torch.randn(6, 5, generator=_GEN)
_W_AFTER = _W_BEFORE - 0.01 * torch.randn(6, 5, generator=_GEN)


def _solution_clip(grads, max_norm):
    total = torch.sqrt(sum((g**2).sum() for g in grads))  # one norm over all gradients
    scale = min(1.0, max_norm / (float(total) + 1e-6))  # never scale up
    return [g * scale for g in grads]


@register(
    "11.1",
    title="clipping the global gradient norm",
    hint="Compute ONE norm over all gradients, sqrt(sum of every squared entry); if it exceeds "
    "max_norm, multiply every gradient by max_norm / (norm + 1e-6); otherwise leave them alone.",
    solution=_solution_clip,
)
def _check_clip(answer):
    for grads, max_norm in ((_GRADS_BIG, 1.0), (_GRADS_SMALL, 1.0), (_GRADS_BIG, 3.0)):
        expected = _solution_clip(grads, max_norm)
        got = call(answer, list(grads), max_norm)
        if not isinstance(got, list | tuple) or len(got) != len(expected):
            return f"return a list of {len(expected)} clipped gradients, one per input gradient."
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            problem = compare(g, e, name=f"clipped gradient {i}", rtol=1e-4, atol=1e-7)
            if problem:
                if grads is _GRADS_SMALL:
                    return (
                        "gradients whose global norm is already below max_norm must be left "
                        f"unchanged ({problem})"
                    )
                per_tensor = [t * min(1.0, max_norm / (float(t.norm()) + 1e-6)) for t in grads]
                if compare(g, per_tensor[i], rtol=1e-4, atol=1e-7) is None:
                    return (
                        "you clipped each tensor on its own: the norm must be taken over all "
                        "gradients together, so that every one is scaled by the same factor."
                    )
                return problem
    return None


def _solution_ratio(w_before, w_after):
    return float((w_after - w_before).norm() / w_before.norm())


@register(
    "11.2",
    title="the update-to-weight ratio",
    hint="Norm of the change divided by the norm of the weights before the step: "
    "(w_after - w_before).norm() / w_before.norm().",
    solution=_solution_ratio,
)
def _check_ratio(answer):
    expected = _solution_ratio(_W_BEFORE, _W_AFTER)
    value = number(call(answer, _W_BEFORE, _W_AFTER), "your ratio (one number for the matrix)")
    problem = compare(value, expected, name="your ratio", rtol=1e-4)
    if problem:
        norms_only = abs(float(_W_AFTER.norm() - _W_BEFORE.norm())) / float(_W_BEFORE.norm())
        if np.isclose(value, norms_only, rtol=1e-3):
            return (
                "you compared the two norms (||W_after|| - ||W_before||): take the norm of the "
                "difference W_after - W_before instead; a rotation changes weights without "
                "changing their norm."
            )
    return problem


# A batch of 8 examples of 10 ReLU units: units 0, 3 and 7 are 0 for every example (dead);
# unit 5 is 0 for all but one example (alive); half the other outputs are 0 as well.
_H = torch.relu(torch.randn(8, 10, generator=_GEN))
_H[:, [0, 3, 7]] = 0.0
_H[:, 5] = 0.0
_H[2, 5] = 0.7


def _solution_dead(h):
    return float((h == 0).all(dim=0).float().mean())  # a unit is a column: dead if 0 in every row


@register(
    "11.3",
    title="the share of dead units",
    hint="A unit is a column of h. It is dead when it is 0 for EVERY example (every row): "
    "(h == 0).all(dim=0) marks the dead units; their share is its mean.",
    solution=_solution_dead,
)
def _check_dead(answer):
    expected = _solution_dead(_H)
    value = number(call(answer, _H.clone()), "your share of dead units (one number)")
    if np.isclose(value, expected, rtol=1e-6):
        return None
    if np.isclose(value, float((_H == 0).float().mean())):
        return (
            "you counted the zero outputs: a unit is dead only if its whole column is 0, "
            "for every example."
        )
    if np.isclose(value, float((_H == 0).any(dim=0).float().mean())):
        return "a unit with a single 0 is not dead: it must be 0 for every example (all, not any)."
    if np.isclose(value, float((_H == 0).all(dim=1).float().mean())):
        return "the units are the columns (dim=0 runs over the examples), not the rows."
    if np.isclose(value, expected * _H.shape[1]):
        return "return the share of dead units (between 0 and 1), not their number."
    return (
        f"your share is {value:.4g}; 3 of these 10 units are dead, so it should be {expected:.4g}."
    )
