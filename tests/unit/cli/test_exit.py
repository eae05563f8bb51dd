"""A command's process ends cheaply: ``main`` has the collector's objects frozen at exit, so
Python's shutdown collections do not traverse everything the command left behind
(docs/performance.md, start-up of a one-entity update)."""
from __future__ import annotations

import subprocess
import sys

from framework import cli

# an atexit handler registered *before* main runs *after* main's (atexit is last in, first out)
CHILD = ("import atexit, gc, os, sys\n"
         "atexit.register(lambda: os.write(2, f'frozen={gc.get_freeze_count()}'.encode()))\n"
         "from framework.cli import main\n"
         "sys.exit(main(sys.argv[1:]))\n")


def test_objects_are_frozen_when_the_process_exits_not_before():
    done = subprocess.run([sys.executable, "-c", CHILD, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "pipectl" in done.stdout
    frozen = int(done.stderr.rsplit("frozen=", 1)[1])
    assert frozen > 10_000  # the modules' objects, at least
    # without a command, nothing is frozen: the handler is main's
    done = subprocess.run([sys.executable, "-c", CHILD.replace("sys.exit(main(sys.argv[1:]))", "pass")],
                          capture_output=True, text=True, timeout=60)
    assert done.stderr.strip() == "frozen=0"


def test_main_registers_the_handler_once(monkeypatch, capsys):
    import gc

    registered = []
    monkeypatch.setattr(cli, "_FREEZE_REGISTERED", [])
    monkeypatch.setattr("atexit.register", lambda fn: registered.append(fn))
    for _ in range(3):
        assert cli.main(["--version"]) == 0
    assert registered == [gc.freeze]
    assert gc.get_freeze_count() == 0  # nothing frozen while the process goes on (a test session)
