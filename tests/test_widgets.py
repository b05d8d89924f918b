"""course_lib.widgets: sliders and the interact pattern."""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
import pytest

from course_lib import viz, widgets


def line_figure(slope=1.0, n=3):
    fig, axes = viz.figure()
    axes[0, 0].plot(range(n), [slope * i for i in range(n)])
    axes[0, 0].set_title(f"slope = {slope:.2f}")
    return fig


def test_slider_constructors():
    s = widgets.int_slider(3, 1, 10, "n")
    assert isinstance(s, W.IntSlider) and (s.min, s.max, s.value) == (1, 10, 3)
    assert not s.continuous_update
    f = widgets.float_slider(0.5, 0.0, 1.0, "x")
    assert f.step == pytest.approx(0.01)
    log = widgets.log_slider(0.1, 1e-3, 10.0, "lr")
    assert isinstance(log, W.FloatLogSlider) and log.value == pytest.approx(0.1)
    assert (log.min, log.max) == (-3, 1)
    d = widgets.dropdown(["relu", "tanh"], description="act")
    assert d.value == "relu"


@pytest.mark.parametrize(
    "make",
    [
        lambda: widgets.int_slider(11, 1, 10),
        lambda: widgets.float_slider(-1.0, 0.0, 1.0),
        lambda: widgets.log_slider(1.0, 0.0, 10.0),
        lambda: widgets.dropdown(["a"], "b"),
    ],
)
def test_bad_slider_defaults_are_clear_errors(make):
    with pytest.raises(ValueError):
        make()


def test_interact_draws_the_default_and_redraws_on_change(monkeypatch):
    displayed = []
    monkeypatch.setattr(widgets, "display", lambda obj: displayed.append(obj))
    slope = widgets.float_slider(1.0, -2.0, 2.0, "slope")
    demo = widgets.interact(line_figure, slope=slope, n=widgets.int_slider(3, 2, 50, "n"))
    assert isinstance(demo, W.interactive) and demo in displayed
    assert demo.result.axes[0].get_title() == "slope = 1.00"
    for value in (slope.min, slope.max):  # the extremes of the range
        slope.value = value
        assert demo.result.axes[0].get_title() == f"slope = {value:.2f}"
    assert not plt.get_fignums(), "figures must be released from pyplot"


def test_render_requires_a_figure():
    assert widgets.render(line_figure, slope=0.5).axes[0].get_title() == "slope = 0.50"
    with pytest.raises(TypeError, match="must return a matplotlib Figure"):
        widgets.render(lambda: 3)
