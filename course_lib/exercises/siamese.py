"""Exercises of notebook 09_siamese_networks.ipynb: checkers and reference solutions.

Checked in the notebook with ``cl.exercises.check("09.N", answer)``; the lesson's code is
in :mod:`course_lib.siamese`.
"""

from __future__ import annotations

import numpy as np
import torch

from . import call, compare, number, register

_GEN = torch.Generator().manual_seed(9)
_D = torch.rand(40, generator=_GEN) * 2.0
_SAME = (torch.rand(40, generator=_GEN) < 0.5).float()
_A, _P, _N = (torch.randn(20, 6, generator=_GEN) for _ in range(3))


def _solution_contrastive(d, same, margin):
    similar = same * d**2  # pull similar pairs together
    dissimilar = (1 - same) * torch.clamp(margin - d, min=0) ** 2  # push others to the margin
    return (similar + dissimilar).mean() / 2


@register(
    "09.1",
    title="the contrastive loss",
    hint="Per pair: same * d**2 + (1 - same) * max(0, margin - d)**2, then the mean over "
    "pairs, divided by 2. torch.clamp(margin - d, min=0) is the max(0, .).",
    solution=_solution_contrastive,
)
def _check_contrastive(answer):
    for margin in (1.0, 0.5):
        expected = _solution_contrastive(_D, _SAME, margin)
        value = number(call(answer, _D, _SAME, margin), f"your loss (margin {margin})")
        problem = compare(value, expected, name=f"your loss (margin {margin})", rtol=1e-5)
        if problem is None:
            continue
        if np.isclose(value, 2 * float(expected), rtol=1e-5):
            return "your loss is twice the expected one: the formula has a factor 1/2."
        swapped = _solution_contrastive(_D, 1 - _SAME, margin)
        if np.isclose(value, float(swapped), rtol=1e-5):
            return "similar and dissimilar pairs are swapped: same = 1 marks a SIMILAR pair."
        unsquared = ((_SAME * _D**2) + (1 - _SAME) * torch.clamp(margin - _D, min=0)).mean() / 2
        if np.isclose(value, float(unsquared), rtol=1e-5):
            return "the hinge max(0, margin - d) must be squared too."
        return problem
    return None


def _solution_triplet(anchor, positive, negative, margin):
    d_pos = (anchor - positive).norm(dim=1)  # anchor to a sample of the same class
    d_neg = (anchor - negative).norm(dim=1)  # anchor to a sample of another class
    return torch.clamp(d_pos - d_neg + margin, min=0).mean()


@register(
    "09.2",
    title="the triplet loss",
    hint="Euclidean distances per row, d_pos = ||a - p||, d_neg = ||a - n||; the loss is "
    "mean(max(0, d_pos - d_neg + margin)). It should match F.triplet_margin_loss.",
    solution=_solution_triplet,
)
def _check_triplet(answer):
    expected = _solution_triplet(_A, _P, _N, 1.0)
    value = number(call(answer, _A, _P, _N, 1.0), "your triplet loss")
    problem = compare(value, expected, name="your triplet loss", rtol=1e-4)
    if problem is None:
        return None
    d_pos, d_neg = (_A - _P).norm(dim=1), (_A - _N).norm(dim=1)
    if np.isclose(value, float((d_pos**2 - d_neg**2 + 1.0).clamp(min=0).mean()), rtol=1e-4):
        return (
            "that is the triplet loss with squared distances, as FaceNet (Schroff et al. 2015) "
            "writes it: a valid form too, but this exercise asks for the plain Euclidean "
            "distances of F.triplet_margin_loss."
        )
    if np.isclose(value, float((d_pos - d_neg + 1.0).mean()), rtol=1e-4):
        return "without max(0, .) triplets that already satisfy the margin give negative loss."
    if np.isclose(value, float((d_neg - d_pos + 1.0).clamp(min=0).mean()), rtol=1e-4):
        return "positive and negative are swapped: the loss grows with d_pos - d_neg."
    return problem
