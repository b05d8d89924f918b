#!/usr/bin/env bash
# The Littlest JupyterHub for a workshop of "Weights in Machine Learning and Deep
# Learning": one server, up to about 100 learners. Run as root on a fresh Ubuntu LTS
# server with a public address; docs/instructor.md ("Deployment kit") explains each step
# and how large the server must be.
#
#   sudo REPO_URL=https://github.com/OWNER/REPO ADMIN=instructor bash install.sh
#
# REPO_URL: the course's git repository (the same that the nbgitpuller link pulls).
# BRANCH (default main), ADMIN (default instructor: the hub's administrator).
set -euo pipefail

REPO_URL="${REPO_URL:?set REPO_URL to the course repository, e.g. https://github.com/OWNER/REPO}"
BRANCH="${BRANCH:-main}"
ADMIN="${ADMIN:-instructor}"
COURSE=/opt/weights-course
DATA=/srv/data/weights-course
USER_ENV=/opt/tljh/user

if [ "$(id -u)" -ne 0 ]; then
    echo "run this as root (sudo)" >&2
    exit 1
fi

# 1. The Littlest JupyterHub itself (its official installer).
curl -fsSL https://tljh.jupyter.org/bootstrap.py | python3 - --admin "$ADMIN"

# 2. The course in the learners' environment: the lock's versions as constraints, as CI
#    installs them; PyTorch first, as its CPU build (PyPI's Linux build bundles CUDA).
if ! "$USER_ENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "the TLJH user environment's Python is older than 3.11, which the course needs:" >&2
    echo "upgrade it first (TLJH documentation: 'Upgrade the user environment's Python')" >&2
    exit 1
fi
rm -rf "$COURSE"
git clone --depth 1 --branch "$BRANCH" "$REPO_URL" "$COURSE"
"$USER_ENV/bin/pip" install --no-cache-dir -c "$COURSE/course_lib/lock.txt" \
    --index-url https://download.pytorch.org/whl/cpu torch
"$USER_ENV/bin/pip" install --no-cache-dir -c "$COURSE/course_lib/lock.txt" \
    "$COURSE" "nbgitpuller==1.3.0"

# 3. The datasets, once, in a folder every learner reads and nobody but root writes.
mkdir -p "$DATA"
"$USER_ENV/bin/python" -m course_lib data --dest "$DATA" --caches none
chmod -R a+rX,go-w "$DATA"

# 4. Per-user settings (environment of every server) and the kernel culler.
install -D -m 644 "$COURSE/deploy/tljh/jupyterhub_config.py" \
    /opt/tljh/config/jupyterhub_config.d/weights-course.py
install -D -m 644 "$COURSE/deploy/jupyter_server_config.json" \
    "$USER_ENV/etc/jupyter/jupyter_server_config.d/weights-course.json"

# 5. Limits per learner, from the measurements (benchmarks/sizing.py rewrites them), the
#    hub's idle culler (servers idle for an hour), JupyterLab as the default interface.
tljh-config set limits.memory 3.5G  # sizing: memory.limit
tljh-config set limits.cpu 1  # sizing: cpu.limit
tljh-config set services.cull.timeout 3600
tljh-config set services.cull.every 300
tljh-config set user_environment.default_app jupyterlab
tljh-config reload

echo "done: give learners the nbgitpuller link of"
echo "  python -m course_lib link --hub https://THIS-SERVER --repo $REPO_URL"
