"""Smoke of the README's run command, as a newcomer uses it (called by .ci/run after the tests).

1. `./scripts/run.sh --demo` with PORT and APP_DATA_DIR from an env file (as `.env` gives them): wait for
   /api/health and a page, then SIGINT (a terminal's Ctrl-C) and check that nothing of ours is left running.
2. A crash: start again, then SIGKILL every process of the run, PostgreSQL included (a stale postmaster.pid
   and a stale handle list stay behind), and start once more: it must recover by itself and stop cleanly.

"Ours" = every process carrying this run's marker in its environment (all descendants inherit it).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
MARKER = "HELPDESK_SMOKE_RUN"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ours(token: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(MARKER) == token:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def database_running(work: Path) -> bool:
    sys.path.insert(0, str(ROOT))
    from ticketing_app import embedded_db

    return embedded_db.is_running(work / "data")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own localhost URL
            return response.status == 200
    except OSError:
        return False


def start(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            ["bash", "scripts/run.sh", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_serving(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 600) -> float:
    started = time.monotonic()
    while not (answers(f"{url}/api/health") and answers(f"{url}/login")):
        if proc.poll() is not None:
            fail(f"the run command exited ({proc.returncode}) before serving", log)
        if time.monotonic() - started > timeout:
            fail(f"not serving {url} after {timeout:.0f} s", log)
        time.sleep(1)
    return time.monotonic() - started


def fail(message: str, log: Path) -> None:
    print(log.read_text(errors="replace")[-6000:], file=sys.stderr)
    print(f"smoke: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="helpdesk-smoke-"))
    port = free_port()
    url = f"http://localhost:{port}"
    env_file = work / "env"
    env_file.write_text(f"PORT={port}\nAPP_DATA_DIR={work / 'data'}\n")
    token = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PORT", "APP_DATA_DIR")}
    env.update({MARKER: token, "HELPDESK_ENV_FILE": str(env_file)})
    log = work / "run.log"

    proc = start(env, log, "--demo")
    took = wait_serving(proc, url, log)
    print(f"smoke: serving {url} (PORT from the env file) after {took:.0f} s")
    os.killpg(proc.pid, signal.SIGINT)
    try:
        code = proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        fail("still running 90 s after Ctrl-C", log)
    time.sleep(1)
    left = ours(token)
    if code != 0 or left or database_running(work):
        fail(f"exit code {code} after Ctrl-C; left running: {[p.cmdline()[:3] for p in left]}", log)
    print("smoke: Ctrl-C stopped everything (app, build tools, PostgreSQL)")

    proc = start(env, log)
    wait_serving(proc, url, log)
    # A crash: nobody gets to clean up. The killed supervisor stays a zombie (this script never reaps it),
    # as a process whose parent is gone or busy can: the next run must not count it as alive.
    for p in ours(token):
        p.kill()
    psutil.wait_procs(ours(token), timeout=10)
    stale = (work / "data" / "pg" / "postmaster.pid").exists()
    print(f"smoke: killed every process of the run (postmaster.pid left behind: {stale})")

    proc = start(env, log)
    took = wait_serving(proc, url, log)
    print(f"smoke: the run after the crash serves after {took:.0f} s")
    os.killpg(proc.pid, signal.SIGINT)
    code = proc.wait(timeout=90)
    time.sleep(1)
    left = ours(token)
    if code != 0 or left or database_running(work):
        fail(f"after the crash: exit code {code}; left running: {[p.cmdline()[:3] for p in left]}", log)
    print("smoke: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
