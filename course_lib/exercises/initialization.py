"""Exercises of notebook 02_initialization.ipynb: checkers and reference solutions.

Checked in the notebook with ``cl.exercises.check("02.N", answer)``; the lesson's code is
in :mod:`course_lib.initialization`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import call, compare, integer, number, pair, register


def _solution_xavier(fan_in, fan_out):
    return math.sqrt(2.0 / (fan_in + fan_out))


@register(
    "02.1",
    title="Xavier/Glorot standard deviation",
    hint="Glorot and Bengio average the fan-in and fan-out: Var(w) = 2 / (fan_in + fan_out); "
    "return the square root.",
    solution=_solution_xavier,
)
def _check_xavier(answer):
    for fan_in, fan_out in ((256, 256), (784, 100), (3, 10)):
        expected = _solution_xavier(fan_in, fan_out)
        name = f"your std for fans ({fan_in}, {fan_out})"
        got = number(call(answer, fan_in, fan_out), name)
        problem = compare(got, expected, name=name)
        if problem:
            if np.isclose(got, expected**2):
                return "you returned the variance: take its square root."
            if np.isclose(got, math.sqrt(1.0 / fan_in)):
                return "that is LeCun's 1/sqrt(fan_in): Xavier uses both fans."
            return problem
    return None


def _solution_kaiming(fan_in):
    return math.sqrt(2.0 / fan_in)


@register(
    "02.2",
    title="Kaiming/He standard deviation for ReLU",
    hint="ReLU zeroes half of its inputs, halving the variance; He et al. double the "
    "weight variance to compensate: Var(w) = 2 / fan_in.",
    solution=_solution_kaiming,
)
def _check_kaiming(answer):
    for fan_in in (256, 784, 9):
        expected = _solution_kaiming(fan_in)
        got = number(call(answer, fan_in), f"your std for fan_in={fan_in}")
        problem = compare(got, expected, name=f"your std for fan_in={fan_in}")
        if problem:
            if np.isclose(got, math.sqrt(1.0 / fan_in)):
                return "you left out the factor 2 that compensates for ReLU zeroing half the units."
            return problem
    return None


def _solution_fans(shape):
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


@register(
    "02.3",
    title="fan-in and fan-out of a convolution",
    hint="A conv weight has shape (out_channels, in_channels, kh, kw); each output sees "
    "in_channels * kh * kw inputs, each input feeds out_channels * kh * kw outputs.",
    solution=_solution_fans,
)
def _check_fans(answer):
    for shape in ((64, 3, 3, 3), (128, 64, 5, 5), (10, 784)):
        expected = tuple(torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape)))
        got = pair(call(answer, shape), 2, "a pair (fan_in, fan_out)")
        got = tuple(
            integer(v, f"fan_{w} for shape {shape}")
            for v, w in zip(got, ("in", "out"), strict=True)
        )
        if got != expected:
            if got == (shape[1], shape[0]):
                return f"for shape {shape} you forgot the kernel size (receptive field)."
            if got == expected[::-1]:
                return (
                    f"for shape {shape} fan_in and fan_out are swapped: dimension 1 is the input."
                )
            return f"for shape {shape} you got {got}, expected {expected}."
    return None
