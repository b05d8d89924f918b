"""Running the course on a JupyterHub: the nbgitpuller link and the per-user settings.

An instructor hands learners one link. nbgitpuller (installed in the hub's user
image) clones the course repository into the learner's home folder on the first
click, merges updates on later clicks without overwriting the learner's own
changes, and opens the notebooks in JupyterLab::

    >>> nbgitpuller_link("https://hub.example.org", "https://github.com/me/weights-course")
    'https://hub.example.org/hub/user-redirect/git-pull?repo=https%3A%2F%2Fgithub.com%2Fme%2Fweights-course&urlpath=lab%2Ftree%2Fweights-course%2Fnotebooks&branch=main'

The link follows nbgitpuller's documented format (the parameters ``repo``,
``urlpath`` and ``branch`` of ``/hub/user-redirect/git-pull``, with ``urlpath``
``lab/tree/<repository folder>/<path>``), as its link generator writes it.

:func:`user_environment` gives the environment of every learner's server (and so
of their kernels) that the deployment kit in ``deploy/`` sets and the workshop
rehearsal measured: one thread per kernel, the shared read-only data folder, a
cache in each learner's home and the reference solutions hidden.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode, urlsplit

#: Where the deployment kit mounts the shared, read-only dataset folder.
SHARED_DATA_DIR = "/srv/data/weights-course"
#: Each learner's cache (sentence embeddings, weights the course trains once):
#: ``~`` is the learner's own home folder (``course_lib.config`` expands it).
USER_CACHE_DIR = "~/.cache/weights-course"
#: The variables that set the number of threads of PyTorch, NumPy and their BLAS.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

_BRANCH = re.compile(r"^(?!-)(?!.*\.\.)(?!.*//)[A-Za-z0-9._/+-]+(?<![./])$")
_SCP_REPO = re.compile(r"^[\w.-]+@[\w.-]+:[\w./~-]+$")
_APPS = {"lab": "lab/tree", "classic": "tree"}


def nbgitpuller_link(
    hub: str,
    repo: str,
    branch: str = "main",
    path: str = "notebooks",
    app: str = "lab",
) -> str:
    """The nbgitpuller link that clones ``repo`` for each learner of ``hub`` and opens ``path``.

    ``hub``: the hub's address (``https://hub.example.org``, optionally with a base
    path such as ``https://example.org/jupyter``). ``repo``: the course's git
    repository (an ``https``, ``http``, ``ssh`` or ``git`` URL, or ``user@host:path``).
    ``branch``: the branch learners get. ``path``: the folder or notebook to open,
    relative to the repository (``notebooks`` or ``notebooks/01_intro_weights.ipynb``).
    ``app``: ``lab`` (JupyterLab) or ``classic`` (the classic notebook interface).
    Raises ``ValueError`` with what is wrong for any invalid argument.
    """
    hub_url = _check_hub(hub)
    folder = repository_folder(repo)
    if not isinstance(branch, str) or not _BRANCH.match(branch):
        raise ValueError(f"branch {branch!r} is not a valid git branch name")
    if app not in _APPS:
        raise ValueError(f"app {app!r} is not one of {sorted(_APPS)}")
    relative = _check_path(path)
    urlpath = "/".join(part for part in (_APPS[app], folder, relative) if part)
    query = urlencode({"repo": repo, "urlpath": urlpath, "branch": branch})
    return f"{hub_url}/hub/user-redirect/git-pull?{query}"


def repository_folder(repo: str) -> str:
    """The folder nbgitpuller clones ``repo`` into: its last path part without ``.git``."""
    if not isinstance(repo, str) or not repo.strip() or repo != repo.strip():
        raise ValueError(f"repo {repo!r} must be a git repository URL without spaces around it")
    if _SCP_REPO.match(repo):
        path = repo.split(":", 1)[1]
    else:
        parts = urlsplit(repo)
        if parts.scheme not in {"https", "http", "ssh", "git"} or not parts.netloc:
            raise ValueError(
                f"repo {repo!r} is not a git repository URL: use https://host/owner/name "
                "(or ssh://, git://, user@host:owner/name)"
            )
        if parts.query or parts.fragment:
            raise ValueError(f"repo {repo!r} must not carry a query or a fragment")
        path = parts.path
    name = path.rstrip("/").rsplit("/", 1)[-1]
    name = name[: -len(".git")] if name.endswith(".git") else name
    if not name or name in {".", ".."} or any(c.isspace() for c in name):
        raise ValueError(f"repo {repo!r} does not end in a repository name")
    return name


def _check_hub(hub: str) -> str:
    if not isinstance(hub, str):
        raise ValueError(f"hub must be the hub's address as a string, not {hub!r}")
    parts = urlsplit(hub.strip())
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise ValueError(
            f"hub {hub!r} is not the address of a JupyterHub: use https://hub.example.org"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"hub {hub!r} must not carry a query or a fragment")
    base = parts.path.rstrip("/")
    if base.endswith("/hub"):
        base = base[: -len("/hub")]
    return f"{parts.scheme}://{parts.netloc}{base}"


def _check_path(path: str) -> str:
    if not isinstance(path, str):
        raise ValueError(f"path must be a string, not {path!r}")
    cleaned = path.strip().strip("/")
    parts = cleaned.split("/") if cleaned else []
    if path.strip().startswith("/") or any(p in {"", ".", ".."} for p in parts):
        raise ValueError(
            f"path {path!r} must be relative to the repository, without '.' or '..' "
            "(e.g. notebooks or notebooks/01_intro_weights.ipynb)"
        )
    return cleaned


def user_environment(
    data_dir: str = SHARED_DATA_DIR,
    *,
    fast: bool = False,
    threads: int = 1,
    cache_dir: str = USER_CACHE_DIR,
) -> dict[str, str]:
    """The environment of each learner's server on a hub (and so of their kernels).

    ``data_dir``: the shared dataset folder, read-only for learners.
    ``fast``: fast mode for every learner (full mode is the default).
    ``threads``: threads per kernel; one lets many kernels share few cores without
    the threads of one kernel waiting on those of another.
    """
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads must be a whole number of at least 1, not {threads!r}")
    if not data_dir or not cache_dir:
        raise ValueError("data_dir and cache_dir must name folders")
    environment = {
        "COURSE_DATA_DIR": str(data_dir),
        "COURSE_CACHE_DIR": str(cache_dir),
        "COURSE_FAST": "1" if fast else "0",
        "COURSE_SOLUTIONS": "hidden",
    }
    environment.update({name: str(threads) for name in THREAD_VARIABLES})
    return environment
