"""Course benchmarks: one run on the current machine, written as a markdown table.

    make bench                          # everything (about 20 minutes on 2 CPU cores)
    python benchmarks/run.py --no-full  # skip the full-mode notebook runs

Measures, in one run:

* every notebook's execution time in fast and in full mode (executed as the
  course site does, in a temporary folder);
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
``<!-- bench -->`` markers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

RESULTS = REPO / "benchmarks" / "results.md"
README = REPO / "README.md"
START, END = "<!-- bench -->", "<!-- /bench -->"


def machine() -> str:
    """One line describing the CPU, cores, Python and torch of this machine."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)"
    )


def notebook_times(full: bool) -> list[str]:
    import build_site

    modes = [True, False] if full else [True]
    seconds: dict[str, dict[bool, float]] = {}
    with tempfile.TemporaryDirectory() as out:
        for fast in modes:
            pages = build_site.build(
                out_dir=Path(out), fast=fast, log=lambda m: print(m, flush=True)
            )
            for page in pages:
                seconds.setdefault(page.source.stem, {})[fast] = page.seconds
    rows = ["| notebook | fast mode | full mode |", "|---|---|---|"]
    for stem, times in seconds.items():
        full_time = f"{times[False]:.0f} s" if False in times else "not run"
        rows.append(f"| {stem} | {times[True]:.0f} s | {full_time} |")
    return rows


def cifar() -> list[str]:
    from course_lib import cifar10_cnn

    r = cifar10_cnn.benchmark(baseline=True, threads=None)
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

    from course_lib import pruning, quantization

    train, test = pruning.mnist_tensors()
    model, _ = pruning.train_lenet(train, epochs=10, progress=False)
    dense = pruning.accuracy(model, test)
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
        acc = pruning.accuracy(m, test)
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
    from course_lib import rnn, transfer_learning

    splits = rnn.mr_split()
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-full", action="store_true", help="skip the full-mode notebook runs")
    parser.add_argument("--no-readme", action="store_true", help="do not update README.md")
    args = parser.parse_args(argv)

    import course_lib as cl

    cl.setup(quiet=True)
    sections = [f"Measured {dt.date.today().isoformat()} on {machine()}.", ""]
    for title, part in (
        ("Notebook run times", lambda: notebook_times(full=not args.no_full)),
        ("CIFAR-10: course CNN vs the PyTorch tutorial's CNN", cifar),
        ("Quantisation and pruning", mnist_models),
        ("Sentence polarity (MR)", mr),
    ):
        print(f"== {title}", flush=True)
        start = time.perf_counter()
        sections += [f"#### {title}", "", *part(), ""]
        print(f"   {time.perf_counter() - start:.0f} s", flush=True)
    text = "\n".join(sections).rstrip() + "\n"
    RESULTS.write_text(text)
    print(text)
    if not args.no_readme:
        readme = README.read_text()
        if START in readme and END in readme:
            head, rest = readme.split(START, 1)
            _, tail = rest.split(END, 1)
            README.write_text(f"{head}{START}\n{text}{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
