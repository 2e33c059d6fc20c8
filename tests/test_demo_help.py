"""`mailer demo --help` names the settings behind the ports it uses, not a fixed 8000."""

from __future__ import annotations

from typer.testing import CliRunner

from mailer.cli.main import app


def test_demo_help_names_the_port_settings() -> None:
    result = CliRunner().invoke(app, ["demo", "--help"], env={"MAILER_WEB_PORT": "8123"})
    assert result.exit_code == 0, result.output
    shown = " ".join(result.output.split())
    assert "MAILER_WEB_HOST and MAILER_WEB_PORT, default 127.0.0.1:8000" in shown
    assert "MAILER_SMTP_PORT, default 2525" in shown
    assert "(then open http://127.0.0.1:8000/)" not in shown  # whatever was configured
