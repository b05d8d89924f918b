"""course_lib.widgets: sliders and the interact pattern."""

from __future__ import annotations

import json

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


# --------------------------------------------------------------------------- frames for the site


@pytest.fixture
def no_demos(monkeypatch):
    """An empty demo registry for the test (the real one is left as it was)."""
    monkeypatch.setattr(widgets, "_DEMOS", [])
    monkeypatch.setattr(widgets, "display", lambda obj: None)


def test_interact_remembers_each_demo(no_demos):
    slope = widgets.float_slider(1.0, -2.0, 2.0, "slope")
    n = widgets.int_slider(3, 2, 50, "n")
    demo = widgets.interact(line_figure, slope=slope, n=n)
    (record,) = widgets.demos()
    assert record.widget is demo and record.fn is line_figure
    assert record.controls == {"slope": slope, "n": n}
    assert record.defaults == {"slope": 1.0, "n": 3} and record.name == "line_figure"
    widgets.clear_demos()
    assert widgets.demos() == []


def test_main_control_is_the_first_slider_else_the_first_dropdown():
    drop = widgets.dropdown(["relu", "tanh"], description="act")
    depth = widgets.int_slider(5, 1, 10, "depth")
    assert widgets.main_control({"act": drop, "depth": depth, "gain": 2.0}) == "depth"
    assert widgets.main_control({"act": drop}) == "act"
    assert widgets.main_control({"gain": 2.0}) is None


@pytest.mark.parametrize(
    "make, values, default",
    [
        (lambda: widgets.int_slider(4, 2, 8, "bits"), [2, 3, 4, 5, 6, 7, 8], 2),
        (
            lambda: widgets.float_slider(5.0, -5.0, 20.0, "w", step=0.1),
            [-5.0, -2.5, 0.0, 2.5, 5.0, 7.5, 10.0, 12.5, 15.0, 17.5, 20.0],
            4,
        ),
        (
            lambda: widgets.float_slider(0.99, 0.5, 0.999, "rho", step=0.001),
            [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.799, 0.849, 0.899, 0.949, 0.99, 0.999],
            10,
        ),
        (
            lambda: widgets.log_slider(1.0, 1e-3, 1e6, "unit", steps=9),
            [1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6],
            3,
        ),
    ],
)
def test_frame_grid_spans_the_range_and_holds_the_default(make, values, default):
    control = make()
    grid, labels, index = widgets.frame_grid(control)
    assert grid == pytest.approx(values) and index == default
    assert grid[index] == control.value, "the default itself, not a neighbour"
    assert grid[0] == pytest.approx(values[0]) and grid[-1] == pytest.approx(values[-1])
    assert len(labels) == len(grid) and labels[index] == format(control.value, ".3g")


def test_frame_grid_of_long_and_log_sliders():
    grid, labels, index = widgets.frame_grid(widgets.int_slider(50, 2, 100, "depth"))
    # FRAMES evenly spread from 2 to 100, plus the default 50, which is not among them
    assert len(grid) == widgets.FRAMES + 1 and (grid[0], grid[index], grid[-1]) == (2, 50, 100)
    assert grid == sorted(set(grid)) and labels[index] == "50"
    lr = widgets.log_slider(0.1, 0.005, 0.3, "lr")
    grid, _, index = widgets.frame_grid(lr)
    assert grid[index] == 0.1 and grid[0] == pytest.approx(0.005) and grid[-1] == pytest.approx(0.3)
    ratios = [b / a for a, b in zip(grid[:-1], grid[1:], strict=True) if 0.1 not in (a, b)]
    assert max(ratios) == pytest.approx(min(ratios), rel=1e-6), "log sliders step geometrically"


def test_frame_grid_of_a_dropdown_and_bad_requests():
    drop = W.Dropdown(options=[("small", 0.01), ("large", 1.0)], value=1.0, description="scale")
    assert widgets.frame_grid(drop) == ([0.01, 1.0], ["small", "large"], 1)
    with pytest.raises(ValueError, match="at least 2 frames"):
        widgets.frame_grid(drop, count=1)
    with pytest.raises(TypeError, match="slider or dropdown"):
        widgets.frame_grid(W.Text("x"))


def test_export_frames_draws_each_demo_once(no_demos, tmp_path):
    calls = []

    def traced(slope=1.0, n=3):
        calls.append((slope, n))
        return line_figure(slope, n)

    demo = widgets.interact(
        traced,
        slope=widgets.float_slider(1.0, -2.0, 2.0, "slope", step=0.5),
        n=widgets.int_slider(3, 2, 50, "n"),
    )
    calls.clear()
    (entry,) = widgets.export_frames(tmp_path, dpi=40)
    assert entry["model_id"] == demo.model_id and entry["function"] == "traced"
    assert calls == [(s, 3) for s in (-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0)]
    assert entry["control"]["labels"][entry["control"]["default_index"]] == "1"
    assert entry["control"]["positions"] == 9 and entry["control"]["kind"] == "slider"
    assert entry["fixed"] == [{"name": "n", "description": "n", "label": "3"}]
    pngs = [(tmp_path / name).read_bytes() for name in entry["frames"]]
    assert all(png.startswith(b"\x89PNG") for png in pngs) and len(set(pngs)) == len(pngs)
    assert json.loads((tmp_path / "manifest.json").read_text()) == [entry]
    calls.clear()
    assert widgets.export_frames(tmp_path, dpi=40) == [entry] and calls == [], "drawn once"
    assert not plt.get_fignums(), "frames are released from pyplot"


def test_a_demo_that_fails_at_some_position_names_it(no_demos, tmp_path):
    def fragile(x=0):
        if x > 5:
            raise ValueError("too large")
        return line_figure(float(x))

    widgets.interact(fragile, x=widgets.int_slider(0, 0, 10, "x value"))
    with pytest.raises(
        RuntimeError, match=r"fragile: the figure for x value = 6 failed: ValueError"
    ):
        widgets.export_frames(tmp_path, dpi=40)
