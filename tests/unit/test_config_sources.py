"""Every setting works from `.env` as well as from the environment, the port and URLs included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ticketing_app.config import PROJECT_ROOT, Settings, env_file

ROOT = Path(__file__).resolve().parents[2]


def test_the_project_env_file_is_read_wherever_the_command_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HELPDESK_ENV_FILE")
    assert env_file() == PROJECT_ROOT / ".env"
    monkeypatch.setenv("HELPDESK_ENV_FILE", "")
    assert env_file() is None


def test_port_and_urls_come_from_the_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PORT", "APP_BASE_URL", "REFLEX_API_URL", "SLA_HOURS_HIGH"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / ".env"
    path.write_text("PORT=4321\nSLA_HOURS_HIGH=2\n")
    settings = Settings(_env_file=path)  # type: ignore[call-arg]
    assert settings.port == 4321
    assert settings.app_base_url == "http://localhost:4321"
    assert settings.reflex_api_url == "http://localhost:4321"
    assert settings.sla_hours_high == 2

    path.write_text("PORT=4321\nAPP_BASE_URL=https://help.example.com/\n")
    settings = Settings(_env_file=path)  # type: ignore[call-arg]
    assert (settings.app_base_url, settings.reflex_api_url) == ("https://help.example.com", "https://help.example.com")

    monkeypatch.setenv("PORT", "5000")  # the environment wins over the file
    assert Settings(_env_file=path).port == 5000  # type: ignore[call-arg]


def test_reflex_config_takes_port_and_api_url_from_the_env_file(tmp_path: Path) -> None:
    path = tmp_path / "env"
    path.write_text("PORT=4322\nREFLEX_API_URL=https://api.example.com\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "REFLEX_API_URL", "APP_BASE_URL")}
    env["HELPDESK_ENV_FILE"] = str(path)
    code = "import rxconfig; c = rxconfig.config; print(c.frontend_port, c.backend_port, c.api_url)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-3:] == ["4322", "4322", "https://api.example.com"]
