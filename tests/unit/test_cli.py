"""The operator commands: demo data (with the password printed in the README) never reaches production."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from ticketing_app import cli, serve
from ticketing_app.config import get_settings


@pytest.fixture()
def production(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("JWT_SECRET", "k3Jd9-aQ2mZx81LpW0vNcT7yRb4HsE6u")
    monkeypatch.setenv("ALLOW_EMBEDDED_DB_IN_PRODUCTION", "true")  # what is tested here is the demo refusal
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture()
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Nothing is loaded or served for real: the commands' work is recorded instead."""
    made: list[str] = []
    monkeypatch.setattr(cli, "load_demo", lambda: made.append("demo") or "demo loaded")
    monkeypatch.setattr(serve, "run", lambda *, demo: made.append(f"run demo={demo}") or 0)
    return made


@pytest.mark.parametrize("argv", [["demo"], ["run", "--demo"]])
def test_demo_data_is_refused_in_production(production, calls, capsys, argv):
    assert cli.main(argv) != 0
    assert calls == []  # nothing created, nothing started
    err = capsys.readouterr().err
    assert "APP_ENV=production" in err and "demo" in err


def test_run_without_demo_is_allowed_in_production(production, calls):
    assert cli.main(["run"]) == 0
    assert calls == ["run demo=False"]


@pytest.mark.parametrize(("argv", "expected"), [(["demo"], ["demo"]), (["run", "--demo"], ["run demo=True"])])
def test_demo_data_is_allowed_in_development(calls, argv, expected):
    assert get_settings().app_env == "development"
    assert cli.main(argv) == 0
    assert calls == expected


def test_readme_lists_every_command_once(capsys):
    """README's one "Other commands" line names each subcommand of `python -m ticketing_app.cli`, no more, no less."""
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    commands = set(re.search(r"\{([a-z,-]+)\}", capsys.readouterr().out).group(1).split(","))
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    lines = [line for line in readme.splitlines() if line.startswith("Other commands")]
    assert len(lines) == 1, lines
    listed = re.search(r"`python -m ticketing_app\.cli ([^`]+)`", lines[0]).group(1)
    names = {part.split()[0] for part in listed.split("|")}
    assert names == commands
