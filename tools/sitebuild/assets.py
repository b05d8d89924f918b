"""The scripts, styles and fonts the site bundles, so that it works offline.

They come from npm packages pinned in ``tools/site-assets/package-lock.json``
(installed there by ``npm ci``, which :func:`ensure_packages` runs when they are
missing or older than the lock file) and from the course's own
``tools/sitebuild/static/``. :func:`copy_assets` copies into ``<site>/assets/``
only the files the pages load, with the packages' licences.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from .notebooks import REPO, BuildError

PACKAGES = REPO / "tools" / "site-assets"
NODE_MODULES = PACKAGES / "node_modules"
STATIC = Path(__file__).resolve().parent / "static"

#: (npm package, file or folder inside it, glob inside a folder, destination in assets/)
BUNDLE = [
    ("requirejs", "require.js", None, "require.js"),
    ("mathjax", "es5/tex-chtml-full.js", None, "mathjax/tex-chtml-full.js"),
    ("mathjax", "es5/output/chtml/fonts/woff-v2", "*.woff", "mathjax/output/chtml/fonts/woff-v2"),
    ("@jupyter-widgets/html-manager", "dist/embed-amd.js", None, "html-manager/embed-amd.js"),
    ("@jupyter-widgets/html-manager", "dist", "*.woff*", "html-manager"),
    ("minisearch", "dist/umd/index.js", None, "minisearch.js"),
]


def ensure_packages(log=print) -> None:
    """Install the pinned npm packages with ``npm ci`` unless they are already there."""
    stamp = NODE_MODULES / ".package-lock.json"
    lock = PACKAGES / "package-lock.json"
    if stamp.is_file() and stamp.stat().st_mtime >= lock.stat().st_mtime and _complete():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise BuildError(
            "the site bundles MathJax, require.js, the Jupyter widgets manager and MiniSearch "
            "from npm packages, and npm is not installed: install Node.js and npm "
            "(Debian: apt-get install npm), then run `make site-assets`"
        )
    log("installing the site's scripts: npm ci in tools/site-assets ...")
    command = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
    result = subprocess.run(command, cwd=PACKAGES, capture_output=True, text=True)
    if result.returncode != 0 or not _complete():
        raise BuildError(
            "npm ci in tools/site-assets failed (it needs the npm registry once):\n"
            + (result.stderr or result.stdout).strip()[-2000:]
        )


def _complete() -> bool:
    return all((NODE_MODULES / package / path).exists() for package, path, _, _ in BUNDLE)


def copy_assets(out_dir: Path) -> Path:
    """Copy the bundled files and the course's own script and style into ``out_dir/assets``."""
    target = out_dir / "assets"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for package, path, pattern, destination in BUNDLE:
        source = NODE_MODULES / package / path
        dest = target / destination
        dest.parent.mkdir(parents=True, exist_ok=True)
        if pattern is None:
            shutil.copy2(source, dest)
            continue
        dest.mkdir(parents=True, exist_ok=True)
        for file in sorted(source.glob(pattern)):
            shutil.copy2(file, dest / file.name)
    for file in sorted(STATIC.iterdir()):
        shutil.copy2(file, target / file.name)
    _write_licences(target / "THIRD-PARTY-LICENSES.txt")
    return target


def _write_licences(target: Path) -> None:
    parts = ["Files in this folder that come from npm packages, with their licences.\n"]
    for package in dict.fromkeys(package for package, *_ in BUNDLE):
        folder = NODE_MODULES / package
        meta = json.loads((folder / "package.json").read_text(encoding="utf-8"))
        parts.append(f"\n=== {package} {meta['version']} ({meta.get('license', 'see package')})\n")
        for name in ("LICENSE", "LICENSE.txt", "LICENSE.md", "dist/embed.js.LICENSE.txt"):
            if (folder / name).is_file():
                parts.append((folder / name).read_text(encoding="utf-8", errors="replace"))
    target.write_text("".join(parts), encoding="utf-8")


def site_size(out_dir: Path) -> tuple[int, int]:
    """Total bytes and number of files under ``out_dir``."""
    files = [p for p in out_dir.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)
