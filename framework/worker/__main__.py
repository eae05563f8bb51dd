"""``python -m framework.worker --port N``: serve the worker app with uvicorn.

Cloud Run passes the port in ``$PORT``; the project and target come from the working
directory (or ``PIPECTL_PROJECT_DIR``) and ``PIPECTL_TARGET`` (see docs/gcp.md).
"""
from __future__ import annotations

import argparse
import os


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m framework.worker", description="pipectl's generic worker service")
    ap.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"), help="interface (default 0.0.0.0)")
    ap.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")), help="port (default $PORT or 8080)")
    ap.add_argument("--log-level", default=os.environ.get("PIPECTL_LOG_LEVEL", "info").lower())
    args = ap.parse_args(argv)
    import uvicorn

    uvicorn.run("framework.worker.app:create_app", factory=True, host=args.host, port=args.port,
                log_level=args.log_level, access_log=False)


if __name__ == "__main__":
    main()
