"""`pipectl ui`: a local web view of the pipeline, its partitions, runs and traces.

Optional: Starlette and uvicorn come with the ``ui`` extra (``pip install -e '.[ui]'`` in a checkout).
Nothing outside this package imports them, and this ``__init__`` imports nothing heavy, so
``pipectl --help`` and ``validate`` stay fast without the extra. :func:`require` turns a
missing extra into an error naming it instead of an ImportError traceback.
"""
from __future__ import annotations

from framework.errors import ConfigError, install_hint


def require() -> None:
    """Raise a ConfigError naming the ``ui`` extra unless starlette and uvicorn import."""
    missing = []
    for module in ("starlette", "uvicorn"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ConfigError(f"pipectl ui needs {' and '.join(missing)}, which are not installed", hint=install_hint("ui"))
