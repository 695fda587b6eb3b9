"""Operator commands: python -m ticketing_app.cli
{run,migrate,prestart,create-admin,demo,worker,mail-in,train-triage,eval-triage,embed-tickets}."""

from __future__ import annotations

import argparse
import logging
import secrets
import sys

from ticketing_app.config import get_settings


def cmd_migrate(_: argparse.Namespace) -> None:
    from ticketing_app.migrations import upgrade_database

    upgrade_database()
    print("database migrated to the newest schema")


def ensure_first_admin() -> None:
    """Create the first admin from ADMIN_EMAIL/ADMIN_PASSWORD, or with generated credentials printed once."""
    from sqlalchemy import func, select

    from ticketing_app.db import session_scope
    from ticketing_app.domain import Role
    from ticketing_app.models import User
    from ticketing_app.services.accounts import ensure_admin

    settings = get_settings()
    with session_scope() as session:
        if settings.admin_email and settings.admin_password:
            _, created = ensure_admin(session, settings.admin_email, settings.admin_password)
            if created:
                print(f"created admin {settings.admin_email}")
            return
        if session.scalar(select(func.count()).where(User.role == Role.ADMIN)):
            return
        email = settings.admin_email or "admin@example.com"
        password = secrets.token_urlsafe(12)
        ensure_admin(session, email, password)
    print("=" * 64)
    print("First admin created. These credentials are shown only this once:")
    print(f"  e-mail:   {email}")
    print(f"  password: {password}")
    print("=" * 64)


def prestart() -> None:
    """What the run command does before serving: migrate and make sure an admin exists."""
    cmd_migrate(argparse.Namespace())
    ensure_first_admin()


def load_demo() -> str:
    """Migrate, then add the demo moderators and tickets; returns what was done (never in production)."""
    from ticketing_app.demo import load_demo_data

    if get_settings().app_env == "production":  # the commands refuse first; this holds for any other caller
        raise SystemExit(DEMO_REFUSED)

    cmd_migrate(argparse.Namespace())
    return load_demo_data()


DEMO_REFUSED = (
    "refusing to load demo data with APP_ENV=production: the demo accounts' password is published in the "
    "README. Use the demo in development only; create real accounts with create-admin and the admin pages."
)


def demo_refused() -> bool:
    """Demo data in production would open moderator accounts with a published password: say so instead."""
    if get_settings().app_env != "production":
        return False
    print(DEMO_REFUSED, file=sys.stderr)
    return True


def cmd_demo(_: argparse.Namespace) -> int:
    if demo_refused():
        return 2
    print(load_demo())
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    if args.demo and demo_refused():
        return 2  # before anything starts: no embedded database, no server
    from ticketing_app.serve import run

    return run(demo=args.demo)


def cmd_worker(_: argparse.Namespace) -> None:
    from ticketing_app.worker_main import main

    main()


def cmd_mail_in(_: argparse.Namespace) -> int:
    from ticketing_app.worker_main import mail_in

    return mail_in()


def cmd_train_triage(_: argparse.Namespace) -> int:
    """Train the offline triage model on the dataset's train split and write the artefact."""
    import json

    from ticketing_app.ai import training
    from ticketing_app.ai.triage_model import reset_model

    arrays, report = training.train(training.load_dataset())
    path = training.save(arrays)
    reset_model()
    print(json.dumps(report, indent=2, sort_keys=True))
    print(f"wrote {path}")
    return 0


def cmd_eval_triage(args: argparse.Namespace) -> int:
    """Print the offline triage's figures on the held-out tickets against the targets."""
    import json

    from ticketing_app.ai import evaluation, training

    report = evaluation.evaluate(
        training.load_holdout(), get_settings().triage_review_threshold, later=training.load_holdout_later()
    )
    print(json.dumps(report, default=str) if args.json else evaluation.format_report(report))
    return 0


def cmd_embed_tickets(_: argparse.Namespace) -> int:
    """Embed every ticket that has no embedding yet, for similar tickets (safe while the app runs)."""
    from ticketing_app.services.embeddings import backfill

    print(f"embedded {backfill()} ticket(s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="python -m ticketing_app.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="serve the app on PORT until Ctrl-C (what ./scripts/run.sh does)")
    run.add_argument("--demo", action="store_true", help="add demo moderators and tickets first")
    run.set_defaults(func=cmd_run)
    for name, fn, text in (
        ("migrate", cmd_migrate, "apply database migrations"),
        ("prestart", lambda a: prestart(), "migrate and create the first admin"),
        ("create-admin", lambda a: ensure_first_admin(), "create the first admin"),
        ("demo", cmd_demo, "fill the database with demo moderators and tickets (refused in production)"),
        ("worker", cmd_worker, "run a standalone background worker"),
        ("mail-in", cmd_mail_in, "receive mail: the SMTP listener (INBOUND_SMTP_PORT) and IMAP polling (IMAP_HOST)"),
    ):
        sub.add_parser(name, help=text).set_defaults(func=fn)
    sub.add_parser("train-triage", help="train the offline triage model (needs scikit-learn)").set_defaults(
        func=cmd_train_triage
    )
    sub.add_parser(
        "embed-tickets", help="compute the embeddings of tickets that have none (similar tickets, reply drafts)"
    ).set_defaults(func=cmd_embed_tickets)
    evaluate = sub.add_parser("eval-triage", help="measure the offline triage on the held-out tickets")
    evaluate.add_argument("--json", action="store_true", help="print the figures as JSON")
    evaluate.set_defaults(func=cmd_eval_triage)
    args = parser.parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
