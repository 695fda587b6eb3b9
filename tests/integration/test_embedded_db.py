"""The embedded PostgreSQL recovers after a crash by itself, and stops when its owner says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]

# Start the server in a process of its own, as the run command does, print the server's process id, and
# die without any exit hook (os._exit): what a crash of the owner leaves behind, its pid in the handle list.
_START = """
import os, sys
from pathlib import Path
from ticketing_app import embedded_db
server = embedded_db.start(Path(sys.argv[1]))
import psycopg
with psycopg.connect(server.get_uri()) as conn:
    assert conn.execute("SELECT 1").fetchone() == (1,)
print(server.get_pid(), flush=True)
os._exit(0)
"""


def _start_in_child(data_dir: Path) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _START, str(data_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip().splitlines()[-1])


def _kill_server(pid: int) -> None:
    server = psutil.Process(pid)
    victims = [server, *server.children(recursive=True)]
    for proc in victims:
        proc.kill()
    psutil.wait_procs(victims, timeout=10)


@pytest.fixture()
def data_dir():
    path = Path(tempfile.mkdtemp(prefix="helpdesk-embedded-"))
    yield path
    from ticketing_app import embedded_db

    for proc in embedded_db._server_processes((path / "pg").resolve()):
        proc.kill()


def test_a_run_after_a_crash_recovers_stale_pid_file_and_handles(data_dir: Path) -> None:
    from ticketing_app import embedded_db

    first = _start_in_child(data_dir)
    assert embedded_db.is_running(data_dir)
    _kill_server(first)  # a crash: nobody ran pg_ctl stop
    pgdata = data_dir / "pg"
    assert (pgdata / "postmaster.pid").exists()
    assert not embedded_db.is_running(data_dir)
    # Worst case of a stale postmaster.pid: its pid now belongs to another living process.
    # So may the socket's lock file, which PostgreSQL itself checks: it refuses to start while that pid is a
    # living process of the server's own user (an unreaped zombie of the killed server is one too).
    server_user = "embedded_postgres" if os.geteuid() == 0 else None
    squatter = subprocess.Popen(["sleep", "120"], user=server_user)
    try:
        for lock in (pgdata / "postmaster.pid", *pgdata.glob(".s.PGSQL.*.lock")):
            lines = lock.read_text().splitlines()
            lock.write_text("\n".join([str(squatter.pid), *lines[1:]]) + "\n")
        assert list(pgdata.glob(".s.PGSQL.*.lock")), "the socket lock file is where the test expects it"
        _check_recovery(data_dir, first)
    finally:
        squatter.kill()
        squatter.wait()


def _check_recovery(data_dir: Path, first: int) -> None:
    from ticketing_app import embedded_db

    pgdata = data_dir / "pg"
    handles = json.loads((pgdata / embedded_db.HANDLES_FILE).read_text())
    assert handles, "the killed owner stays in the package's handle list"

    second = _start_in_child(data_dir)
    assert second != first
    assert embedded_db.is_running(data_dir)

    server = embedded_db.start(data_dir)  # this process joins, then stops it as the last living user
    assert server.get_pid() == second
    embedded_db.stop(server)
    assert not embedded_db.is_running(data_dir)
