"""Benchmark 7: inbound mails parsed and processed per second by one worker (one thread).

A fixed mix of mails from 20 known senders (half replies carrying a reply token, a quoted history and a
signature, to the sender's ticket; half new tickets, a quarter of all HTML-only, some in latin-1), stored with
`services.inbound.receive` first (timed too), then:
- parse only: `mail.inbound.parse_mail` on each raw mail, in this process;
- process: the production job (`jobs.handlers.handle_process_inbound` through `Worker.run_job`), one job at
  a time as one worker slot runs them: parse, decide, comment or ticket, the mail's status, the job's commit.
Baseline in the same run: `email.message_from_bytes(raw, policy=email.policy.default)` plus reading the body
(`get_body().get_content()`), the standard library's own cost of reading the same mails.
"""

from __future__ import annotations

import email
import email.policy
import time
from typing import Any

from bench.harness import log, ratio

TARGET_PER_S = 50


def _mails(count: int, people: list[tuple[str, int, int]]) -> list[bytes]:
    """`people`: (address, user id, their ticket id) of each sender."""
    from email.message import EmailMessage

    from ticketing_app.mail import tokens

    quoted = "\n".join(f"> line {n} of the earlier message" for n in range(30))
    out = []
    for n in range(count):
        address, user_id, ticket_id = people[(n // 2) % len(people)]
        message = EmailMessage()
        message["Message-ID"] = f"<bench-{time.time_ns()}-{n}@client.example>"
        message["From"] = address
        if n % 2 == 0:  # replies and new tickets spread over the senders: the per-user rate limits hold
            message["To"] = tokens.reply_address(ticket_id, user_id)
            message["Subject"] = "Re: printer"
            text = (
                f"Reply {n}: still broken after the restart.\n\n-- \nRequester\nACME\n\n"
                f"On Mon, 1 Dec 2026 at 10:00, Helpdesk <helpdesk@localhost> wrote:\n{quoted}\n"
            )
        else:
            message["To"] = "helpdesk@localhost"
            message["Subject"] = f"New problem {n}: VPN drops"
            text = f"Hello,\n\nthe VPN drops every {n % 60 + 1} minutes since the update.\n\nThanks"
        if n % 4 == 1:
            message.set_content(f"<html><body><p>{text}</p><script>x()</script></body></html>", subtype="html")
        elif n % 4 == 3:
            message.set_content(text, charset="latin-1")
        else:
            message.set_content(text)
        out.append(bytes(message))
    return out


def _seed(senders: int = 20) -> list[tuple[str, int, int]]:
    from ticketing_app.db import session_scope
    from ticketing_app.models import User
    from ticketing_app.schemas import TicketCreate
    from ticketing_app.services import tickets

    people = []
    with session_scope() as session:
        for n in range(senders):
            user = User(name=f"Sender {n}", email=f"sender{n}@bench.example", password_hash="!", role="user")
            session.add(user)
            session.flush()
            ticket = tickets.create_ticket(session, user, TicketCreate(title="Printer", description="It jams."))
            people.append((user.email, user.id, ticket.id))
    return people


def run(*, count: int, commit_ms: float | None = None) -> dict[str, Any]:
    """`commit_ms`: pgbench's one-row INSERT commit latency measured at the start of the run (machine load)."""
    from sqlalchemy import event

    from ticketing_app.db import get_engine, session_scope
    from ticketing_app.domain import InboundSource, InboundStatus, JobKind
    from ticketing_app.jobs import queue
    from ticketing_app.jobs.handlers import HANDLERS, on_dead
    from ticketing_app.jobs.worker import Worker
    from ticketing_app.mail.inbound import message_id_of, parse_mail
    from ticketing_app.models import InboundEmail
    from ticketing_app.services import inbound

    mails = _mails(count, _seed())

    started = time.perf_counter()
    for raw in mails:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain", "html"))  # type: ignore[attr-defined]
        if body is not None:
            body.get_content()
    stdlib_s = time.perf_counter() - started

    started = time.perf_counter()
    for raw in mails:  # as the job calls it (the stored Message-ID is known), plus reading that id as receive does
        parse_mail(raw, envelope_from="x@bench.example", message_id=message_id_of(raw))
    parse_s = time.perf_counter() - started

    started = time.perf_counter()
    for raw in mails:
        with session_scope() as session:
            inbound.receive(session, raw, source=InboundSource.SMTP, envelope_from="x@bench.example",
                            envelope_to=["helpdesk@localhost"])  # fmt: skip
    receive_s = time.perf_counter() - started

    worker = Worker(HANDLERS, on_dead=on_dead, concurrency=1)
    processed = 0
    statements = 0

    def count_statement(*_: object) -> None:
        nonlocal statements
        statements += 1

    event.listen(get_engine(), "before_cursor_execute", count_statement)
    started = time.perf_counter()
    while True:
        with session_scope() as session:
            jobs = queue.claim_jobs(session, worker.worker_id, limit=1, lease_seconds=30, kind=JobKind.PROCESS_INBOUND)
        if not jobs:
            break
        worker.run_job(jobs[0])
        processed += 1
    process_s = time.perf_counter() - started
    event.remove(get_engine(), "before_cursor_execute", count_statement)
    with session_scope() as session:
        from sqlalchemy import func, select

        statuses = dict(session.execute(select(InboundEmail.status, func.count()).group_by(InboundEmail.status)).all())
    stdlib_rate = count / stdlib_s
    parse_rate = count / parse_s
    process_rate = processed / process_s if process_s else None
    log(
        f"inbound: stdlib {stdlib_rate:.0f}/s, parse_mail {parse_rate:.0f}/s, receive {count / receive_s:.0f}/s,"
        f" processed by one worker {process_rate or 0:.0f}/s ({statuses})"
    )
    return {
        "mails": count,
        "statuses": {str(k): v for k, v in statuses.items()},
        "all_processed": statuses.get(InboundStatus.PROCESSED, 0) == count,
        "baseline_stdlib_parse_per_s": round(stdlib_rate, 1),
        "parse_per_s": round(parse_rate, 1),
        "receive_per_s": round(count / receive_s, 1),
        "processed_per_s_one_worker": round(process_rate, 1) if process_rate else None,
        "ratio_parse_over_stdlib": ratio(parse_rate, stdlib_rate, 3),
        "ratio_processed_over_stdlib": ratio(process_rate, stdlib_rate, 3),
        # What the machine's load does not change much: SQL statements per mail (the claim included), and the
        # time per mail in units of the run's commit latency.
        "statements_per_mail": round(statements / processed, 1) if processed else None,
        "ms_per_mail": round(process_s * 1000 / processed, 2) if processed else None,
        "ms_per_mail_in_commits": ratio(process_s * 1000 / processed, commit_ms, 1)
        if processed and commit_ms
        else None,
        "target": f">= {TARGET_PER_S} mails/s processed per worker",
        "target_met": bool(process_rate and process_rate >= TARGET_PER_S),
    }
