# The course's per-user settings for The Littlest JupyterHub (deploy/tljh/install.sh
# copies this file to /opt/tljh/config/jupyterhub_config.d/weights-course.py).
# They are course_lib.workshop.user_environment(): the shared read-only data folder,
# a cache in each learner's home, full mode, the solutions hidden, one thread per kernel.
c = get_config()  # noqa: F821

c.Spawner.environment.update(
    {
        "COURSE_DATA_DIR": "/srv/data/weights-course",
        "COURSE_CACHE_DIR": "~/.cache/weights-course",
        "COURSE_FAST": "0",
        "COURSE_SOLUTIONS": "hidden",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }
)
c.Spawner.default_url = "/lab"
