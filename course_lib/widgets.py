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

Every demo that :func:`interact` creates is remembered (:func:`demos`), so that
the course site can draw it at a grid of positions of its main control (the
first slider, or the first dropdown where it has no slider) with the other
controls at their defaults: :func:`frame_grid` chooses the positions and
:func:`export_frames` writes the figures as PNG files with a JSON manifest. The
site's pages then swap those frames as the reader moves a slider, no kernel needed.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import ipywidgets as W
import matplotlib.pyplot as plt
from IPython.display import display
from matplotlib.figure import Figure

__all__ = [
    "Demo",
    "clear_demos",
    "demos",
    "dropdown",
    "export_frames",
    "float_slider",
    "frame_grid",
    "int_slider",
    "interact",
    "log_slider",
    "positions",
    "render",
]

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
    _DEMOS.append(Demo(fn, dict(controls), widget, dict(widget.kwargs)))
    display(widget)
    return widget


# --------------------------------------------------------------------------- frames

#: Positions drawn for a demo's main control: every position when it has at most
#: MAX_FRAMES of them, otherwise FRAMES spread evenly over its range plus the default.
FRAMES = 11
MAX_FRAMES = 15
MANIFEST = "manifest.json"


@dataclass
class Demo:
    """A slider demo made by :func:`interact`: its figure function and its controls."""

    fn: Callable[..., Figure]
    controls: dict
    widget: W.interactive
    defaults: dict

    @property
    def name(self) -> str:
        fn = self.fn.func if hasattr(self.fn, "func") else self.fn  # functools.partial
        return getattr(fn, "__name__", "demo")


_DEMOS: list[Demo] = []


def demos() -> list[Demo]:
    """The demos :func:`interact` has created in this process, oldest first."""
    return list(_DEMOS)


def clear_demos() -> None:
    """Forget the demos created so far."""
    _DEMOS.clear()


def main_control(controls: dict) -> str | None:
    """The parameter a site's frame slider moves: the first slider, else the first dropdown."""
    for kinds in ((W.IntSlider, W.FloatSlider, W.FloatLogSlider), (W.Dropdown,)):
        for name, control in controls.items():
            if isinstance(control, kinds):
                return name
    return None


def frame_grid(control: W.ValueWidget, count: int = FRAMES) -> tuple[list, list[str], int]:
    """Values of ``control`` to draw, their readouts, and the index of its current value.

    A slider with at most :data:`MAX_FRAMES` positions gets all of them, a longer one
    ``count`` positions spread evenly from its minimum to its maximum (on a log scale
    for a log slider) plus its current value where that is not among them, so the
    frames include the figure of the default values exactly. A dropdown gets its options.
    """
    if count < 2:
        raise ValueError(f"frame_grid needs at least 2 frames, got {count}")
    if isinstance(control, W.Dropdown):
        options = [
            o if isinstance(o, tuple) and len(o) == 2 else (str(o), o) for o in control.options
        ]
        keep = [value for _, value in options].index(control.value)
        picks = _spread(len(options), count, keep)
        return [options[k][1] for k in picks], [options[k][0] for k in picks], picks.index(keep)
    if not isinstance(control, (W.IntSlider, W.FloatSlider, W.FloatLogSlider)):
        raise TypeError(f"no frames for a {type(control).__name__}: a slider or dropdown is needed")
    n = positions(control)
    if isinstance(control, W.FloatLogSlider):
        position = (math.log(control.value, control.base) - control.min) / control.step
    else:
        position = (control.value - control.min) / control.step
    keep = min(max(int(round(position)), 0), n - 1)
    picks = _spread(n, count, keep)
    values = [_slider_value(control, k) for k in picks]
    values[picks.index(keep)] = control.value
    return values, [_readout(control, v) for v in values], picks.index(keep)


def positions(control: W.ValueWidget) -> int:
    """How many values a slider (its steps from minimum to maximum) or dropdown can take."""
    if isinstance(control, W.Dropdown):
        return len(control.options)
    return int(round((control.max - control.min) / control.step)) + 1


def _spread(n: int, count: int, keep: int) -> list[int]:
    """Indices into ``range(n)``: all of them, or ``count`` evenly spread, ``keep`` among them."""
    if n <= max(count, MAX_FRAMES):
        return list(range(n))
    picks = {round(i * (n - 1) / (count - 1)) for i in range(count)}
    return sorted(picks | {keep})


def _slider_value(control, k: int):
    if isinstance(control, W.IntSlider):
        return control.min + k * control.step
    exponent_or_value = round(control.min + k * control.step, 12)
    if isinstance(control, W.FloatLogSlider):
        return float(f"{control.base**exponent_or_value:.12g}")
    return exponent_or_value


def _readout(control, value) -> str:
    if isinstance(control, W.IntSlider):
        return str(value)
    if isinstance(control, W.Dropdown):
        return str(control.label)
    return format(value, control.readout_format)


def export_frames(folder, *, dpi: float | None = None, count: int = FRAMES) -> list[dict]:
    """Draw every demo not yet in ``folder``'s manifest at its :func:`frame_grid` positions.

    Writes ``demoNN-KK.png`` files (at ``dpi``, by default the figure's own) and
    ``manifest.json``: one entry per demo with the ``model_id`` of its widget, the
    main control (name, description, kind, readouts, index of the default) and the
    other controls at their defaults. Returns the manifest. A figure that fails to
    draw raises a ``RuntimeError`` that names the demo and the position.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
    done = {entry["model_id"] for entry in manifest}
    for demo in _DEMOS:
        if demo.widget.model_id not in done:
            manifest.append(_export_demo(demo, folder, len(manifest) + 1, dpi, count))
            path.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest


def _export_demo(demo: Demo, folder: Path, number: int, dpi, count: int) -> dict:
    start = time.perf_counter()
    entry = {"model_id": demo.widget.model_id, "function": demo.name, "frames": []}
    name = main_control(demo.controls)
    entry["fixed"] = [
        {"name": key, "description": _describe(key, c), "label": _readout(c, c.value)}
        for key, c in demo.controls.items()
        if key != name and isinstance(c, W.ValueWidget)
    ]
    if name is None:
        entry["control"] = None
        return entry
    control = demo.controls[name]
    values, labels, default = frame_grid(control, count)
    for k, (value, label) in enumerate(zip(values, labels, strict=True)):
        try:
            fig = render(demo.fn, **{**demo.defaults, name: value})
        except Exception as error:
            raise RuntimeError(
                f"slider demo {demo.name}: the figure for {_describe(name, control)} = {label} "
                f"failed: {type(error).__name__}: {error}"
            ) from error
        file = f"demo{number:02d}-{k:02d}.png"
        fig.savefig(folder / file, format="png", dpi=dpi or fig.dpi, bbox_inches="tight")
        entry["frames"].append(file)
    entry["control"] = {
        "name": name,
        "description": _describe(name, control),
        "kind": "dropdown" if isinstance(control, W.Dropdown) else "slider",
        "labels": labels,
        "default_index": default,
        "positions": positions(control),
    }
    entry["seconds"] = round(time.perf_counter() - start, 3)
    return entry


def _describe(name: str, control) -> str:
    return getattr(control, "description", "") or name
