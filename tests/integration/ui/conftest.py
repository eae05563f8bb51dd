"""A real browser on a real server: Debian's chromium driven by Playwright, `pipectl ui`
served by uvicorn in a thread, on a copy of the NBA example after `pipectl demo`.

Playwright's own browser download cannot work here (no internet but the package
registries), so the tests launch the system chromium (`.ci/run` installs it). A missing
browser fails the tests with the command to fix it; they are never skipped.
Screenshots go to ``test-output/ui/`` (gitignored; ``PIPECTL_UI_SCREENSHOTS`` overrides).
"""
from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from framework.cli import main
from tests.projects import REPO, copy_example

CHROMIUM = os.environ.get("PIPECTL_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def shots() -> Path:
    out = Path(os.environ.get("PIPECTL_UI_SCREENSHOTS", REPO / "test-output" / "ui"))
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module")
def nba(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The NBA example after `pipectl demo`: 4 dates through 5 phases and the 2 PM update."""
    root = copy_example(tmp_path_factory.mktemp("ui-nba") / "nba")
    assert main(["-p", str(root), "demo", "--yes", "--quiet"]) == 0
    return root


@pytest.fixture(scope="module")
def server(nba: Path) -> Iterator[str]:
    import uvicorn

    from framework.ui.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(str(nba), None, refresh_seconds=0.5)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no chromium at {CHROMIUM}: install it with `apt-get install -y chromium` (.ci/run does), "
                    "or point PIPECTL_CHROMIUM at a Chromium binary")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 1500, "height": 900})
        yield context
        context.close()


@pytest.fixture
def page(browser):
    page = browser.new_page()
    page.set_default_timeout(15_000)
    yield page
    page.close()
