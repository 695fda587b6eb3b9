"""`python -m ticketing_app.cli run [--demo]`: what ./scripts/run.sh starts, and what Ctrl-C stops.

This process owns everything it starts: the embedded PostgreSQL (unless DATABASE_URL names a server) and
`reflex run --env prod --single-port` with its build tools and server workers, in a process group of their
own. The children get the database's URL, so they never join the embedded server's reference count; on
Ctrl-C (or SIGTERM) the group is asked to stop, killed if it does not, and the database is stopped last.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import types

import psutil

from ticketing_app.config import PROJECT_ROOT, get_settings

log = logging.getLogger(__name__)
STOP_GRACE_SECONDS = 15


def _say(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def _stop_group(child: subprocess.Popen[bytes]) -> None:
    """SIGINT to the app's group (granian and Reflex shut down on it), then SIGKILL whatever is left."""
    members = _group_members(child.pid)
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            break
        try:
            child.wait(timeout=STOP_GRACE_SECONDS)
            break
        except subprocess.TimeoutExpired:
            continue
    members += [p for p in _group_members(child.pid) if p not in members]
    _gone, alive = psutil.wait_procs(members, timeout=5)
    for proc in alive:
        proc.kill()
    if child.poll() is None:
        child.kill()
        child.wait()


def _group_members(pgid: int) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid:
                found.append(proc)
        except (ProcessLookupError, psutil.Error):
            continue
    return found


def run(*, demo: bool) -> int:
    """Prepare the database, serve the app until interrupted, and stop everything this started."""
    from ticketing_app import cli, db, embedded_db

    settings = get_settings()
    env = dict(os.environ)
    server = None
    if not settings.database_url:
        server = embedded_db.start(settings.app_data_dir.resolve())
        env["DATABASE_URL"] = os.environ["DATABASE_URL"] = server.get_uri()
        get_settings.cache_clear()
        db.reset_engine()
    interrupted = False

    def on_signal(signum: int, _frame: types.FrameType | None) -> None:
        nonlocal interrupted
        interrupted = True
        raise KeyboardInterrupt

    # Installed explicitly: a shell starting us in the background sets SIGINT to "ignore", which Python
    # would otherwise keep, and Ctrl-C (or the CI smoke's SIGINT) would then stop nothing.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    child: subprocess.Popen[bytes] | None = None
    try:
        cli.prestart()
        if demo:
            print(cli.load_demo())
        db.reset_engine()  # the children open their own connections
        _say(f"starting the app on {settings.app_base_url} (Ctrl-C to stop)")
        child = subprocess.Popen(
            [sys.executable, "-m", "reflex", "run", "--env", "prod", "--single-port"],
            cwd=PROJECT_ROOT,
            env=env,
            start_new_session=True,  # Ctrl-C reaches us; we stop the group
        )
        return child.wait()
    except KeyboardInterrupt:
        interrupted = True
        return 0
    finally:
        if child is not None:
            _say("stopping the app")
            _stop_group(child)
        if server is not None:
            _say("stopping the embedded PostgreSQL")
            embedded_db.stop(server)
        if interrupted:
            _say("stopped")
