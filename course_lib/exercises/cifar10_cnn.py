"""Exercises of notebook 13_cifar10_cnn.ipynb: checkers and reference solutions.

Checked in the notebook with ``cl.exercises.check("13.N", answer)``; the lesson's code is
in :mod:`course_lib.cifar10_cnn`.
"""

from __future__ import annotations

import numpy as np

from . import call, compare, integer, pair, register, values

_RNG = np.random.default_rng(13)
_IMAGES = _RNG.integers(0, 256, size=(12, 3, 8, 8), dtype=np.uint8)
_IMAGES[:, 0] //= 2  # make the channels differ


def _solution_stats(images):
    x = images.astype(np.float64) / 255.0
    return x.mean(axis=(0, 2, 3)), x.std(axis=(0, 2, 3))


@register(
    "13.1",
    title="per-channel mean and standard deviation",
    hint="Scale to 0..1 (divide by 255), then reduce over every axis except the channel "
    "axis: axis=(0, 2, 3).",
    solution=_solution_stats,
)
def _check_stats(answer):
    mean, std = _solution_stats(_IMAGES)
    got = pair(call(answer, _IMAGES), 2, "a pair (mean, std), each with one value per channel")
    for value, expected, name in ((got[0], mean, "your mean"), (got[1], std, "your std")):
        problem = compare(value, expected, name=name, rtol=1e-4)
        if problem is None:
            continue
        arr = values(value, expected)
        if arr is not None and np.allclose(arr / 255.0, expected, rtol=1e-4):
            return f"{name} is on the 0..255 scale: divide the pixels by 255 first."
        if values(value, np.zeros((len(_IMAGES), 3))) is not None:
            return f"{name} has one row per image: average over the images too (axis 0)."
        return problem
    return None


def _solution_confusion(y_true, y_pred, n_classes):
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    for t, p in zip(y_true, y_pred, strict=True):
        cm[t, p] += 1  # row: true class, column: predicted class
    return cm


_Y_TRUE = _RNG.integers(0, 4, size=50)
_Y_PRED = np.where(_RNG.random(50) < 0.6, _Y_TRUE, _RNG.integers(0, 4, size=50))


@register(
    "13.2",
    title="a confusion matrix from scratch",
    hint="Start from np.zeros((n_classes, n_classes), dtype=int) and add 1 at "
    "[true class, predicted class] for every example.",
    solution=_solution_confusion,
)
def _check_confusion(answer):
    expected = _solution_confusion(_Y_TRUE, _Y_PRED, 4)
    got = call(answer, _Y_TRUE, _Y_PRED, 4)
    problem = compare(got, expected, name="your matrix")
    if problem is None:
        return None
    arr = values(got, expected)
    if arr is not None and np.array_equal(arr, expected.T):
        return "your matrix is transposed: rows are the true classes, columns the predictions."
    if arr is not None and np.allclose(arr, expected / expected.sum(1, keepdims=True)):
        return "return the counts, not the rates per row."
    return problem


def _solution_conv_params(c_in, c_out, k, bias):
    return c_out * c_in * k * k + (c_out if bias else 0)


@register(
    "13.3",
    title="weights of a convolution layer",
    hint="Each of the c_out filters has c_in x k x k weights, plus one bias per filter "
    "when bias=True. The image size does not matter.",
    solution=_solution_conv_params,
)
def _check_conv_params(answer):
    for c_in, c_out, k, bias in ((3, 16, 3, False), (16, 32, 3, True), (6, 16, 5, True)):
        expected = _solution_conv_params(c_in, c_out, k, bias)
        got = integer(call(answer, c_in, c_out, k, bias), "your count")
        if got == expected:
            continue
        if bias and got == expected - c_out:
            return f"for c_in={c_in}, c_out={c_out}, k={k}, bias=True you forgot the biases."
        if got == c_out * c_in * k + (c_out if bias else 0):
            return "a k x k filter has k * k weights per input channel, not k."
        return f"for c_in={c_in}, c_out={c_out}, k={k}, bias={bias} you got {got}, expected {expected}."
    return None
