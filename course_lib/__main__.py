"""``python -m course_lib``: the course command (see :mod:`course_lib.cli`)."""

from .cli import main

raise SystemExit(main())
