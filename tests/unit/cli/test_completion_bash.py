"""Bash completion in a real bash: words with ``:`` or ``=`` (``tag:ml``, ``--from-phase=an``)
complete whole although bash splits them at its COMP_WORDBREAKS.

Two drivers: the script's completion function called with the COMP_* variables bash would
set (the words split at ``:`` as bash splits them), and an interactive bash on a pseudo
terminal where readline itself presses TAB. Skipped where bash is missing (CI has it).
"""
from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from projects import copy_example

BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(BASH is None, reason="bash is not installed")
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def shell_env(tmp_path_factory) -> tuple[Path, dict[str, str], str]:
    """The example project, a `pipectl` on PATH that runs this tree, and the bash script."""
    tmp = tmp_path_factory.mktemp("bash")
    root = copy_example(tmp / "nba")
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "pipectl"
    exe.write_text(f"#!/bin/sh\nexec {sys.executable} -m framework.cli \"$@\"\n")
    exe.chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(tmp), "TERM": "dumb",
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
           "LANG": "C.UTF-8"}
    script = subprocess.run([str(exe), "completion", "bash"], env=env, capture_output=True, text=True, check=True).stdout
    return root, env, script


def bash_words(line: str, breaks: str = "\"'><=;|&(:") -> list[str]:
    """COMP_WORDS as bash builds them for an unquoted line: split at blanks, and each run of
    word-break characters a word of its own (``tag:ml`` -> ``tag``, ``:``, ``ml``)."""
    words = re.findall(rf"[{re.escape(breaks)}]+|[^\s{re.escape(breaks)}]+", line)
    return words


def complete_function(shell_env, line: str) -> list[str]:
    """COMPREPLY of the script's function called as bash calls it at the end of ``line``."""
    root, env, script = shell_env
    words = bash_words(line)
    if line.endswith(" "):
        words.append("")
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    program = (f"{script}\nCOMP_LINE='{line}'; COMP_POINT={len(line)}; COMP_WORDS=({quoted}); "
               f"COMP_CWORD={len(words) - 1}\n_pipectl_completion pipectl\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n")
    out = subprocess.run([BASH, "--norc", "--noprofile", "-c", program], cwd=root, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [w for w in out.stdout.splitlines() if w]


def test_bash_words_split_like_bash() -> None:
    assert bash_words("pipectl ls --select tag:ml") == ["pipectl", "ls", "--select", "tag", ":", "ml"]
    assert bash_words("pipectl ls --select tag:") == ["pipectl", "ls", "--select", "tag", ":"]


def test_a_selector_after_its_colon_completes_as_the_rest_of_the_word(shell_env) -> None:
    assert complete_function(shell_env, "pipectl ls --select tag:m") == ["ml"]  # readline keeps `tag:`
    assert sorted(complete_function(shell_env, "pipectl ls --select tag:")) == ["core", "daily", "ml", "player_stats"]
    assert complete_function(shell_env, "pipectl run --select phase:prec") == ["precompute"]
    assert complete_function(shell_env, "pipectl ls --select phase:raw,player_game_s") == ["raw,player_game_summary"]
    assert complete_function(shell_env, "pipectl ls --select player_game_s") == ["player_game_summary"]


def test_an_option_value_after_equals_and_plain_words(shell_env) -> None:
    assert complete_function(shell_env, "pipectl run --date 2025-01-06 --from-phase=an") == ["analytics"]
    assert complete_function(shell_env, "pipectl run --date 2025-01-06 --from-phase an") == ["analytics"]
    assert "render" in complete_function(shell_env, "pipectl ren")
    assert "player_lookup=" in complete_function(shell_env, "pipectl simulate update --entity ")


def _interactive(root: Path, env: dict[str, str], script: str, keys: str, timeout: float = 120.0) -> str:
    """Type ``keys`` into an interactive bash on a pseudo terminal; returns what it printed."""
    (root / "complete.bash").write_text(script)
    master, slave = pty.openpty()
    proc = subprocess.Popen([BASH, "--norc", "--noprofile", "-i"], cwd=root, env={**env, "PS1": "$ "},
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    # readline reads the keys in order: those after a TAB wait until its completion returned
    os.write(master, f"source complete.bash\n{keys}exit\n".encode())
    out, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the shell exited: its end of the terminal is closed
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
    return out.decode("utf-8", "replace")


def test_readline_completes_a_tag_selector_on_tab(shell_env) -> None:
    """TAB in an interactive bash, then Ctrl-A and `echo @@` to print the completed line."""
    root, env, script = shell_env
    text = _interactive(root, env, script, "pipectl ls --select tag:m\t\x01echo @@\n"
                                           "pipectl ls --select phase:prec\t\x01echo @@\n")
    lines = [m.strip() for m in re.findall(r"^@@(.*)$", text.replace("\r", ""), flags=re.M)]
    assert lines == ["pipectl ls --select tag:ml", "pipectl ls --select phase:precompute"], text[-2000:]
