"""Exercises of notebook 05_visualization.ipynb: checkers and reference solutions.

Checked in the notebook with ``cl.exercises.check("05.N", answer)``; the lesson's code is
in :mod:`course_lib.visualization`.
"""

from __future__ import annotations

import numpy as np

from . import call, compare, number, register, values

_RNG = np.random.default_rng(5)
_W0 = {"a": _RNG.normal(size=(4, 6)), "b": _RNG.normal(size=(3,))}
_W1 = {"a": _W0["a"] * 0.8 + _RNG.normal(0, 0.2, size=(4, 6)), "b": _W0["b"] + 0.5}


def _solution_relative_change(w0, w1):
    return np.linalg.norm(w1 - w0) / np.linalg.norm(w0)


@register(
    "05.1",
    title="relative change of a weight tensor",
    hint="Norm of the difference divided by the norm of the start: "
    "np.linalg.norm(w1 - w0) / np.linalg.norm(w0) (np.linalg.norm of a matrix is the "
    "Frobenius norm, the square root of the sum of all squares).",
    solution=_solution_relative_change,
)
def _check_relative_change(answer):
    for name in ("a", "b"):
        w0, w1 = _W0[name], _W1[name]
        expected = _solution_relative_change(w0, w1)
        value = number(call(answer, w0, w1), "your relative change")
        problem = compare(value, expected, name="your relative change", rtol=1e-6)
        if problem is None:
            continue
        if np.isclose(value, np.linalg.norm(w1 - w0)):
            return "you returned ||w1 - w0||: divide by ||w0|| to make it relative."
        if np.isclose(abs(value), abs(np.linalg.norm(w1) / np.linalg.norm(w0) - 1)):
            return (
                "you compared the norms, ||w1|| / ||w0|| - 1: weights can rotate without "
                "changing their norm. Take the norm of the difference w1 - w0."
            )
        return problem
    return None


_FILTERS = _RNG.normal(size=(5, 3, 3, 3))
_FILTERS[0] = _FILTERS[0, :1]  # a pure brightness filter: share 0


def _solution_colour_share(filters):
    brightness = filters.mean(axis=1, keepdims=True)  # the same in each channel
    colour = filters - brightness
    return (colour**2).sum(axis=(1, 2, 3)) / (filters**2).sum(axis=(1, 2, 3))


@register(
    "05.2",
    title="colour share of RGB filters",
    hint="Average over the channel axis (axis=1, keepdims=True) to get the brightness part; "
    "subtract it to get the colour part; compare sums of squares per filter "
    "(axis=(1, 2, 3)).",
    solution=_solution_colour_share,
)
def _check_colour_share(answer):
    expected = _solution_colour_share(_FILTERS)
    got = call(answer, _FILTERS)
    problem = compare(got, expected, name="your colour shares", rtol=1e-6)
    if problem is None:
        return None
    arr = values(got, expected)
    if arr is not None and np.allclose(arr, np.sqrt(expected)):
        return "you compared norms, not energies: square before summing (and take no root)."
    if arr is not None and np.allclose(arr, 1 - expected):
        return "you returned the brightness share; the colour share is 1 minus it."
    return problem


def _solution_smoothness(w):
    pairs = (w[:, :-1] * w[:, 1:]).sum() + (w[:-1, :] * w[1:, :]).sum()
    energy = 0.5 * ((w[:, :-1] ** 2 + w[:, 1:] ** 2).sum() + (w[:-1, :] ** 2 + w[1:, :] ** 2).sum())
    return pairs / energy


_IMAGE = np.cumsum(np.cumsum(_RNG.normal(size=(7, 7)), axis=0), axis=1)
_NOISE = _RNG.normal(size=(7, 7))


@register(
    "05.3",
    title="smoothness of a weight image",
    hint="Multiply each weight with its right neighbour (w[:, :-1] * w[:, 1:]) and with the one "
    "below (w[:-1, :] * w[1:, :]); divide the sum by the matching sum of half the squares.",
    solution=_solution_smoothness,
)
def _check_smoothness(answer):
    for w in (_IMAGE, _NOISE):
        expected = _solution_smoothness(w)
        value = number(call(answer, w), "your smoothness")
        problem = compare(value, expected, name="your smoothness", rtol=1e-6)
        if problem is None:
            continue
        only_h = (w[:, :-1] * w[:, 1:]).sum() / (0.5 * (w[:, :-1] ** 2 + w[:, 1:] ** 2).sum())
        if np.isclose(value, only_h):
            return "you used only horizontal neighbours: add the vertical pairs too."
        return problem
    return None
