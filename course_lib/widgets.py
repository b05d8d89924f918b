"""Slider demos: a pure function ``f(**params) -> Figure`` wrapped with ipywidgets.

The pattern, used by every notebook::

    def loss_landscape(lr=0.1, steps=20) -> Figure: ...     # in the topic module

    demo = cl.widgets.interact(
        loss_landscape,
        lr=cl.widgets.log_slider(0.1, 1e-3, 1.0, "learning rate"),
        steps=cl.widgets.int_slider(20, 1, 100, "steps"),
    )

The function is pure (same parameters, same figure) and puts the key number
in its title, so the figure that the default values draw tells the story even
where no browser runs the sliders (CI, a static HTML rendering). ``demo.result``
is the current figure, which notebooks and tests can inspect; changing a
slider's ``value`` redraws it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import ipywidgets as W
import matplotlib.pyplot as plt
from IPython.display import display
from matplotlib.figure import Figure

__all__ = ["dropdown", "float_slider", "int_slider", "interact", "log_slider", "render"]

_STYLE = {"description_width": "initial"}
_LAYOUT = {"width": "420px"}


def int_slider(value: int, min: int, max: int, description: str = "", step: int = 1) -> W.IntSlider:
    """An integer slider that redraws when released (not while dragging)."""
    _check_range(value, min, max, description)
    return W.IntSlider(
        value=value,
        min=min,
        max=max,
        step=step,
        description=description,
        continuous_update=False,
        style=_STYLE,
        layout=_LAYOUT,
    )


def float_slider(
    value: float,
    min: float,
    max: float,
    description: str = "",
    step: float | None = None,
    readout_format: str = ".3g",
) -> W.FloatSlider:
    """A float slider (100 steps across the range unless ``step`` is given)."""
    _check_range(value, min, max, description)
    return W.FloatSlider(
        value=value,
        min=min,
        max=max,
        step=step if step is not None else (max - min) / 100,
        description=description,
        continuous_update=False,
        readout_format=readout_format,
        style=_STYLE,
        layout=_LAYOUT,
    )


def log_slider(
    value: float, min: float, max: float, description: str = "", steps: int = 60
) -> W.FloatLogSlider:
    """A slider over ``[min, max]`` on a log scale (for learning rates, penalties, ...)."""
    import math

    _check_range(value, min, max, description)
    if min <= 0:
        raise ValueError(f"log_slider {description!r}: min must be positive, got {min}")
    lo, hi = math.log10(min), math.log10(max)
    return W.FloatLogSlider(
        value=value,
        base=10,
        min=lo,
        max=hi,
        step=(hi - lo) / steps,
        description=description,
        continuous_update=False,
        readout_format=".3g",
        style=_STYLE,
        layout=_LAYOUT,
    )


def dropdown(options: Sequence, value=None, description: str = "") -> W.Dropdown:
    """A choice among ``options`` (the first one by default)."""
    options = list(options)
    value = options[0] if value is None else value
    if value not in options:
        raise ValueError(f"dropdown {description!r}: default {value!r} is not among {options}")
    return W.Dropdown(options=options, value=value, description=description, style=_STYLE)


def _check_range(value, lo, hi, description) -> None:
    if not lo <= value <= hi:
        raise ValueError(f"slider {description!r}: default {value} lies outside [{lo}, {hi}]")


def render(fn: Callable[..., Figure], **params) -> Figure:
    """Call ``fn(**params)``, check that it returned a Figure, and release it from pyplot."""
    fig = fn(**params)
    if not isinstance(fig, Figure):
        raise TypeError(
            f"{getattr(fn, '__name__', fn)} must return a matplotlib Figure, got {type(fig).__name__}"
        )
    plt.close(fig)
    return fig


def interact(fn: Callable[..., Figure], **controls) -> W.interactive:
    """Display ``fn``'s figure with a slider (or other control) per parameter.

    This is ``ipywidgets.interact`` (live updates, no "run" button) with the
    figure drawn once per change. Returns the ``interactive`` widget:
    ``.result`` is the current figure and ``.kwargs`` the current values.
    """

    def draw(**params) -> Figure:
        fig = render(fn, **params)
        display(fig)
        return fig

    draw.__name__ = getattr(fn, "__name__", "demo")
    widget = W.interactive(draw, **controls)
    display(widget)
    return widget
