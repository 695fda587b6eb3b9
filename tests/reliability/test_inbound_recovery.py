"""Inbound mail survives kill -9: every mail the listener answered 250 is stored, and a worker killed while it
processes the backlog leaves nothing lost or doubled once another worker has run (real processes)."""

from __future__ import annotations

import signal
import smtplib
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.fakes.mails import mail
from tests.fakes.smtp_server import LOCALHOST, free_port
from tests.reliability.procs import ROOT, _env, spawn_worker, stop
from tests.reliability.test_faults import wait_until
from ticketing_app.db import session_scope
from ticketing_app.domain import EventKind, InboundStatus
from ticketing_app.models import InboundEmail, Ticket, TicketEvent

pytestmark = pytest.mark.slow

MAILS = 80


def counts() -> Counter[str]:
    with session_scope() as s:
        return Counter(dict(s.execute(select(InboundEmail.status, func.count()).group_by(InboundEmail.status)).all()))


def test_mails_survive_killing_the_listener_and_the_worker(clean_db: str, database: str, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "mail-in.log"
    with log.open("ab") as out:
        listener = subprocess.Popen(
            [sys.executable, "-m", "ticketing_app.cli", "mail-in"],
            cwd=ROOT,
            env=_env(database, {"INBOUND_SMTP_PORT": str(port)}),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    accepted = 0
    try:
        assert wait_until(lambda: _listening(port), 30), log.read_text()[-2000:]
        with smtplib.SMTP(LOCALHOST, port, timeout=10) as client:
            for n in range(MAILS):
                client.sendmail(f"crash{n}@example.com", ["helpdesk@localhost"], mail(sender=f"crash{n}@example.com"))
                accepted += 1
    finally:
        stop(listener, signal.SIGKILL)
    assert counts() == Counter({InboundStatus.RECEIVED: accepted})  # every 250 was a committed row

    short_lease = {"JOB_LEASE_SECONDS": "3"}  # the survivor takes the killed worker's jobs over sooner
    worker = spawn_worker(database, tmp_path / "w1.log", short_lease)
    try:
        assert wait_until(lambda: counts()[InboundStatus.PROCESSED] > 0, 60, interval=0.02), (
            tmp_path / "w1.log"
        ).read_text()[-3000:]
    finally:
        stop(worker, signal.SIGKILL)  # mid-backlog: some processed, some running, some queued
    at_kill = counts()
    assert 0 < at_kill[InboundStatus.PROCESSED] < MAILS, at_kill

    survivor = spawn_worker(database, tmp_path / "w2.log", short_lease)
    try:
        # The killed worker's leases run out (JOB_LEASE_SECONDS), then the survivor takes its jobs over.
        assert wait_until(lambda: counts() == Counter({InboundStatus.PROCESSED: MAILS}), 60), (
            f"{counts()} {(tmp_path / 'w2.log').read_text()[-3000:]}"
        )
        time.sleep(1.0)  # anything doubled would show up now
    finally:
        stop(survivor)
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == MAILS
        created = Counter(s.scalars(select(TicketEvent.ticket_id).where(TicketEvent.kind == EventKind.CREATED)))
        assert set(created.values()) == {1}
        per_mail = Counter(s.scalars(select(InboundEmail.ticket_id)))
        assert len(per_mail) == MAILS and set(per_mail.values()) == {1}


def _listening(port: int) -> bool:
    try:
        with smtplib.SMTP(LOCALHOST, port, timeout=2) as client:
            return client.noop()[0] == 250
    except OSError:
        return False
