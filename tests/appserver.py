"""Serve the whole app as in production (`reflex run --env prod --single-port`) for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_production_app(
    env: dict[str, str], log_path: Path, *, timeout: float = 240, extra_args: tuple[str, ...] = ()
) -> Iterator[tuple[subprocess.Popen, str]]:
    """Build and start the app on a free port with `env` on top of ours; yields (process, base URL).

    Reflex is kept off the internet (system bun, no version check), as scripts/env.sh does for people.
    """
    port = free_port()
    tools = ROOT / ".tools" / "node_modules" / ".bin"
    full_env = {
        **os.environ,
        "PATH": f"{tools}:{os.environ['PATH']}" if tools.exists() else os.environ["PATH"],
        "PORT": str(port),
        "REFLEX_API_URL": f"http://localhost:{port}",
        "APP_BASE_URL": f"http://localhost:{port}",
        "REFLEX_USE_SYSTEM_BUN": "1",
        "REFLEX_CHECK_LATEST_VERSION": "0",
        "REFLEX_HTTP_CLIENT_BIND_ADDRESS": "0.0.0.0",
        **env,
    }
    log_path.parent.mkdir(parents=True, exist_ok=True)
    url = f"http://localhost:{port}"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reflex", "run", "--env", "prod", "--single-port", *extra_args],
            cwd=ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the app exited while starting; see {log_path}")
                with contextlib.suppress(httpx.HTTPError):
                    if (
                        httpx.get(f"{url}/api/health", timeout=2).status_code == 200
                        and httpx.get(f"{url}/login", timeout=5, follow_redirects=True).status_code == 200
                    ):
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the app did not start within {timeout:.0f} s; see {log_path}")
                time.sleep(1)
            yield proc, url
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
