"""course_lib.viz: every helper returns a Figure and draws what it is given."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from course_lib import training, viz


def test_figure_grid():
    fig, axes = viz.figure(2, 3)
    assert isinstance(fig, Figure) and axes.shape == (2, 3)


def test_plot_history_with_and_without_accuracy():
    h = training.History(
        loss=[1.0, 0.5], accuracy=[0.5, 0.8], val_loss=[1.1, 0.7], val_accuracy=[0.4, 0.7]
    )
    fig = viz.plot_history(h, title="run")
    assert len(fig.axes) == 2 and fig.get_suptitle() == "run"
    assert len(fig.axes[0].lines) == 2
    fig = viz.plot_history({"loss": [3.0, 2.0, 1.0]})
    assert len(fig.axes) == 1 and fig.axes[0].lines[0].get_ydata().tolist() == [3.0, 2.0, 1.0]


@pytest.mark.parametrize("shape", [(5, 28, 28), (5, 3, 32, 32), (5, 32, 32, 3), (5, 1, 8, 8)])
def test_image_grid_shapes(shape):
    images = np.random.default_rng(0).integers(0, 255, shape)
    fig = viz.image_grid(images, titles=list("abcde"), ncols=3, title="grid")
    visible = [ax for ax in fig.axes if ax.images]
    assert len(visible) == 5 and visible[1].get_title() == "b"


def test_image_grid_normalises_weights():
    weights = torch.randn(4, 3, 5, 5)
    fig = viz.image_grid(weights, normalize=True)
    shown = fig.axes[0].images[0].get_array()
    assert shown.min() >= 0 and shown.max() <= 1
    grey = viz.image_grid(np.random.randn(2, 6, 6), normalize=True)
    lo, hi = grey.axes[0].images[0].get_clim()
    assert lo == -hi  # diverging map centred on zero
    with pytest.raises(ValueError, match="images must be"):
        viz.image_grid(np.zeros((3, 4)))


def test_histograms_show_each_std():
    values = {"layer1": np.random.default_rng(0).normal(0, 2.0, 5000), "layer2": torch.zeros(10)}
    fig = viz.histograms(values, title="weights")
    titles = [ax.get_title() for ax in fig.axes if ax.patches]
    assert titles[0].startswith("layer1\nstd=1.9") or titles[0].startswith("layer1\nstd=2")
    assert titles[1] == "layer2\nstd=0"
    with pytest.raises(ValueError):
        viz.histograms({})


def test_show_displays_and_closes(monkeypatch):
    import matplotlib.pyplot as plt

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    fig, _ = viz.figure()
    assert viz.show(fig) is None and shown == [fig]
    assert fig.number not in plt.get_fignums()
