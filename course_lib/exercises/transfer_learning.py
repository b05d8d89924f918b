"""Exercises of notebook 08_transfer_learning.ipynb: checkers and reference solutions.

Checked in the notebook with ``cl.exercises.check("08.N", answer)``; the lesson's code is
in :mod:`course_lib.transfer_learning`.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..transfer_learning import LAYERS, freeze, small_cnn
from . import call, integer, pair, register


def _exercise_model() -> nn.Sequential:
    model = small_cnn(4, width=4)
    freeze(model.conv1)
    model.fc1[1].bias.requires_grad_(False)
    return model


def _solution_count(model):
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


@register(
    "08.1",
    title="trainable vs total parameters",
    hint="Loop over model.parameters(); p.numel() is the number of numbers in a tensor and "
    "p.requires_grad says whether it is trained. Return (trainable, total).",
    solution=_solution_count,
)
def _check_count(answer):
    trainable, total = _solution_count(_exercise_model())
    n_tensors = len(list(_exercise_model().parameters()))
    got = pair(call(answer, _exercise_model()), 2, "a pair (trainable, total)")
    got = (integer(got[0], "your trainable count"), integer(got[1], "your total count"))
    if got == (total, trainable):
        return "the pair is the wrong way round: trainable first, then total."
    if got[1] == n_tensors or got[0] <= n_tensors:
        return "you counted parameter tensors; count the numbers in them with p.numel()."
    if got[1] != total:
        return f"the total should be {total:,}, got {got[1]}."
    if got[0] == total:
        return "every parameter was counted as trainable: skip those with requires_grad False."
    if got[0] != trainable:
        return f"the trainable count should be {trainable:,}, got {got[0]}."
    return None


def _solution_transfer(source, target, k):
    for name in ["conv1", "conv2", "conv3", "fc1"][:k]:
        layer = getattr(target, name)
        layer.load_state_dict(getattr(source, name).state_dict())  # copy the weights
        for p in layer.parameters():
            p.requires_grad_(False)  # and freeze them
    return target


@register(
    "08.2",
    title="copy and freeze the first k layers",
    hint="For each of the first k names in ('conv1', 'conv2', 'conv3', 'fc1'): "
    "getattr(target, name).load_state_dict(getattr(source, name).state_dict()), then set "
    "requires_grad_(False) on that layer's parameters. Leave the other layers alone.",
    solution=_solution_transfer,
)
def _check_transfer(answer):
    for k in (2, 4, 0):
        torch.manual_seed(1)
        source = small_cnn(6, width=4)
        torch.manual_seed(2)
        fresh = small_cnn(4, width=4)
        # the answer works on copies (see call): source and fresh stay as they are here
        got = call(answer, source, copy.deepcopy(fresh), k)
        names = [n for n, _ in fresh.named_parameters()]
        if not isinstance(got, nn.Module) or [n for n, _ in got.named_parameters()] != names:
            return "return the target model (the one passed as `target`), with its layers."
        for i, name in enumerate((*LAYERS, "head")):
            mine, src, new = (
                dict(getattr(m, name).named_parameters()) for m in (got, source, fresh)
            )
            for pname, p in mine.items():
                same_shape = p.shape == src[pname].shape
                copied = same_shape and torch.equal(p.detach(), src[pname].detach())
                if i < k and not copied:
                    return f"with k={k}, {name}.{pname} was not copied from the source."
                if i < k and p.requires_grad:
                    return f"with k={k}, {name}.{pname} was copied but not frozen (requires_grad is True)."
                if i >= k and not torch.equal(p.detach(), new[pname].detach()):
                    return (
                        f"with k={k}, {name}.{pname} changed: only the first k layers are copied."
                    )
                if i >= k and not p.requires_grad:
                    return f"with k={k}, {name}.{pname} is frozen: only the first k layers are."
    return None
