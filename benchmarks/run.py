"""Course benchmarks: one run on the current machine, written as a markdown table.

    make bench                                 # everything (about 20 minutes on 2 CPU cores)
    python benchmarks/run.py --no-full         # skip the full-mode notebook runs
    python benchmarks/run.py --notebooks-only  # only the notebooks' time, memory and CPU

Measures, in one run:

* every notebook's run time, its kernel's peak memory and its kernel's CPU time,
  in fast and in full mode (``benchmarks/notebook_usage.py``: a fresh kernel with
  one thread and an empty cache per notebook, as a learner's first run on a hub);
* CIFAR-10 time-to-accuracy of the course's CNN next to the PyTorch tutorial's
  small CNN, trained on the same data;
* int8 vs fp32 (dynamic quantisation of LeNet-300-100 on MNIST): size, CPU
  latency and accuracy;
* magnitude pruning of LeNet-300-100: accuracy one-shot and after
  prune-and-retrain at each sparsity;
* MR sentence polarity: the recurrent classifiers and the frozen pretrained
  encoder with a linear head, on the same held-out split.

The datasets are those of the data directory (``COURSE_DATA_DIR``): the full
datasets for a learner, the samples on a machine that only has those. The
table goes to ``benchmarks/results.md`` and into the README between the
``<!-- bench -->`` markers; the notebooks' measurements also go to
``benchmarks/notebooks.json``, from which ``benchmarks/sizing.py`` regenerates
the instructor guide's sizing section (with the workshop rehearsal's
``benchmarks/rehearsal.json``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

RESULTS = REPO / "benchmarks" / "results.md"
NOTEBOOKS_JSON = REPO / "benchmarks" / "notebooks.json"
#: Notebooks that failed during this run (each with its error).
FAILURES: list[str] = []
README = REPO / "README.md"
START, END = "<!-- bench -->", "<!-- /bench -->"


def machine(threads: int | None = None) -> str:
    """One line describing the CPU, cores, memory, Python and torch of this machine."""
    import psutil
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = threads or torch.get_num_threads()
    return (
        f"{cpu}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GB memory, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"torch {torch.__version__} ({threads} thread{'s' * (threads > 1)})"
    )


def notebook_usage(full: bool, threads: int, only: list[str] | None = None) -> list[str]:
    """Each notebook's run time, kernel peak memory and CPU time, fast (and full) mode.

    Writes ``benchmarks/notebooks.json``, from which ``benchmarks/sizing.py`` sizes a
    JupyterHub; ``only`` (numbers such as ``14``) measures those notebooks again and
    keeps the others' measurements. A notebook that fails is recorded with its error
    and what it used up to the failing cell (``FAILURES`` lists it); the others run.
    """
    paths = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    record = json.loads(NOTEBOOKS_JSON.read_text()) if only and NOTEBOOKS_JSON.is_file() else {}
    measured = record.get("modes", {})
    for mode in ["fast", "full"] if full else ["fast"]:
        for path in paths:
            if not only or path.name[:2] in only:
                measured.setdefault(mode, {})[path.stem] = _measure_one(path, mode, threads)
    record.update(
        measured=dt.date.today().isoformat(),
        machine=machine(threads),
        threads=threads,
        data=data_description(),
        load_before=os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        modes=measured,
    )
    NOTEBOOKS_JSON.write_text(json.dumps(record, indent=1) + "\n")
    return usage_table(measured, threads, [p.stem for p in paths])


def _measure_one(path: Path, mode: str, threads: int) -> dict:
    import notebook_usage

    print(f"[{mode}] {path.stem} ...", flush=True)
    try:
        usage = notebook_usage.measure(path, fast=mode == "fast", threads=threads)
    except notebook_usage.NotebookError as error:
        FAILURES.append(f"[{mode}] {error}")
        print(f"  FAILED: {error}", flush=True)
        partial = getattr(error, "usage", None)
        return {**(partial.to_dict() if partial else {}), "error": str(error).splitlines()[0]}
    print(
        f"  {usage.seconds:.1f} s, kernel peak {usage.peak_mb:,.0f} MB, CPU {usage.cpu_s:.1f} s",
        flush=True,
    )
    return usage.to_dict()


def usage_table(measured: dict[str, dict[str, dict]], threads: int, stems: list[str]) -> list[str]:
    """The markdown table of :func:`notebook_usage`'s measurements."""
    rows = [
        f"Each notebook in a fresh kernel with {threads} thread{'s' * (threads > 1)} and an "
        "empty cache (a learner's first run), kernel start included; peak memory and CPU "
        "time are the kernel's.",
        "",
        "| notebook | fast: time | fast: peak memory | fast: CPU | "
        "full: time | full: peak memory | full: CPU |",
        "|---|---|---|---|---|---|---|",
    ]
    for stem in stems:
        cells = [stem]
        for mode in ("fast", "full"):
            if mode not in measured:
                cells += ["not run"] * 3
            elif stem not in measured[mode]:
                cells += ["not run"] * 3
            elif "error" in measured[mode][stem]:
                cells += ["failed"] * 3
            else:
                cells += _usage_cells(measured[mode][stem])
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _usage_cells(usage: dict) -> list[str]:
    return [f"{usage['seconds']:.0f} s", f"{usage['peak_mb']:,.0f} MB", f"{usage['cpu_s']:.0f} s"]


def data_description() -> str:
    """How many training images the data directory holds (samples or complete data)."""
    from course_lib import config, data

    try:
        cifar = data.load_cifar10("train", download=False)
        mnist = data.load_mnist("train", download=False)
    except Exception as error:  # the record still says what it could not read
        return f"the data directory {config.data_dir()} is incomplete ({type(error).__name__})"
    complete = len(cifar.y) == 50_000 and len(mnist.y) == 60_000
    return (
        f"{len(cifar.y):,} CIFAR-10 and {len(mnist.y):,} MNIST training images "
        f"({'the complete datasets' if complete else 'samples of the datasets'})"
    )


def cifar() -> list[str]:
    from cifar10_bench import benchmark

    r = benchmark(baseline=True, threads=None)
    return [
        "Both trained on the same images; the tutorial's CNN, with its own recipe, for the "
        "same time as ours (epoch after epoch until it has used that time).",
        "",
        "| CIFAR-10 CNN | training images | epochs | training time | test accuracy |",
        "|---|---|---|---|---|",
        f"| course CNN (`SmallResNet`, {r['params']:,} weights) | {r['n_train']:,} | {r['epochs']} | "
        f"{r['train_seconds']:.0f} s | {r['accuracy']:.1%} ({r['accuracy_no_tta']:.1%} without flips) |",
        f"| PyTorch tutorial CNN | {r['n_train']:,} | {r['baseline_epochs']} | "
        f"{r['baseline_seconds']:.0f} s | {r['baseline_accuracy']:.1%} (its best epoch) |",
    ]


def mnist_models() -> list[str]:
    import torch

    from course_lib import data, pruning, quantization, training

    train, test = data.mnist_tensors(standardize=True)
    model, _ = pruning.train_lenet(train, epochs=10, progress=False)
    dense = training.accuracy(model, test)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.ao.quantization's notice
        int8 = quantization.quantize_dynamic_int8(model)
    sizes = quantization.state_dict_bytes(model), quantization.state_dict_bytes(int8)
    rows = [
        f"LeNet-300-100 on MNIST ({len(train[1]):,} training, {len(test[1]):,} test images):",
        "",
        "| model | state_dict size | latency, batch 1 | latency, batch 256 | test accuracy |",
        "|---|---|---|---|---|",
    ]
    for name, m, size in (("fp32", model, sizes[0]), ("int8 (quantize_dynamic)", int8, sizes[1])):
        lat1 = quantization.cpu_latency(m, test[0][:1], repeats=200)
        lat256 = quantization.cpu_latency(m, test[0][:256], repeats=50)
        acc = training.accuracy(m, test)
        rows.append(
            f"| {name} | {size / 1024:,.0f} KiB | {lat1 * 1e3:.3f} ms | {lat256 * 1e3:.2f} ms | {acc:.2%} |"
        )
    rows.append(
        f"\nint8 is {sizes[0] / sizes[1]:.2f}x smaller (one CPU thread for the latencies).\n"
    )
    targets = [0.5, 0.75, 0.875, 0.92]
    one_shot = pruning.accuracy_vs_sparsity(model, test, targets)["accuracy"]
    torch.manual_seed(0)
    _, records = pruning.iterative_pruning(model, train, test, targets, epochs=3, progress=False)
    rows += [
        "| weights removed | one-shot accuracy | after prune-and-retrain |",
        "|---|---|---|",
        f"| 0 % (dense) | {dense:.2%} | {dense:.2%} |",
    ]
    for target, shot, rec in zip(targets, one_shot, records, strict=True):
        rows.append(f"| {100 * target:g} % | {shot:.2%} | {rec['retrained_accuracy']:.2%} |")
    return rows


def mr() -> list[str]:
    from course_lib import rnn, text, transfer_learning

    splits = text.mr_split()
    rows = [
        f"MR sentence polarity, fixed held-out split ({len(splits['train']):,} train, "
        f"{len(splits['val']):,} validation, {len(splits['test']):,} test sentences):",
        "",
        "| model | test accuracy | training time |",
        "|---|---|---|",
    ]
    for cell in ("rnn", "lstm", "gru"):
        r = rnn.train_sentence_model(cell, splits, progress=False)
        rows.append(
            f"| bidirectional {cell.upper()} from scratch | {r['test_accuracy']:.1%} | {r['seconds']:.0f} s |"
        )
    emb = transfer_learning.mr_embeddings(progress=False)  # read from the cache after one run
    start = time.perf_counter()
    head = transfer_learning.train_linear_head(emb["train_emb"], emb["train"].y)
    head_seconds = time.perf_counter() - start
    acc = float((head(emb["test_emb"]).argmax(1).numpy() == emb["test"].y).mean())
    encoder = transfer_learning.load_encoder()
    sample = list(emb["train"].x[:512])
    start = time.perf_counter()
    encoder.encode(sample, batch_size=64, show_progress_bar=False)
    rate = len(sample) / (time.perf_counter() - start)
    rows.append(
        f"| frozen all-MiniLM-L6-v2 + linear head ({len(emb['train'].y):,} train sentences: "
        f"training and validation above) | {acc:.1%} | {head_seconds:.1f} s for the head; "
        f"encoding {rate:.0f} sentences/s, once (cached) |"
    )
    rows.append("\nKim (2014), 10-fold cross-validation: CNN-rand 76.1 %, CNN-static 81.0 %.")
    return rows


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-full", action="store_true", help="skip the full-mode notebook runs")
    parser.add_argument("--no-readme", action="store_true", help="do not update README.md")
    parser.add_argument(
        "--notebooks-only",
        action="store_true",
        help="only the notebooks' time, memory and CPU (notebooks.json and the sizing; "
        "results.md and the README keep their other measurements)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads per notebook kernel (default 1, as on a hub)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NN",
        help="with --notebooks-only: measure these notebooks again (e.g. 08 14), keep the others",
    )
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)

    import course_lib as cl

    cl.setup(quiet=True)
    parts = [
        (
            "Notebooks: time, memory, CPU",
            lambda: notebook_usage(not args.no_full, args.threads, args.only),
        )
    ]
    if not args.notebooks_only:
        parts += [
            ("CIFAR-10: course CNN vs the PyTorch tutorial's CNN", cifar),
            ("Quantisation and pruning", mnist_models),
            ("Sentence polarity (MR)", mr),
        ]
    sections = [f"Measured {dt.date.today().isoformat()} on {machine()}.", ""]
    for title, part in parts:
        print(f"== {title}", flush=True)
        start = time.perf_counter()
        sections += [f"#### {title}", "", *part(), ""]
        print(f"   {time.perf_counter() - start:.0f} s", flush=True)
    text = "\n".join(sections).rstrip() + "\n"
    print(text)
    if FAILURES:
        print("notebooks that failed (recorded as failed; the sizing is not regenerated):")
        print("\n".join(FAILURES))
        return 1
    print(f"sizing: {update_sizing()}")
    if args.notebooks_only:
        return 0
    RESULTS.write_text(text)
    if not args.no_readme:
        write_readme(text)
    return 0


def write_readme(text: str) -> None:
    """Put ``text`` between the README's bench markers."""
    readme = README.read_text()
    if START in readme and END in readme:
        head, rest = readme.split(START, 1)
        _, tail = rest.split(END, 1)
        README.write_text(f"{head}{START}\n{text}{END}{tail}")


def update_sizing() -> str:
    """Regenerate the instructor guide's sizing section from the measurements."""
    import sizing

    try:
        return sizing.update()
    except sizing.SizingError as error:
        return f"not updated: {error}"


if __name__ == "__main__":
    sys.exit(main())
