"""The command line's conventions: version, help texts with defaults, global options anywhere, choices
checked by the parser, one-line errors with documented exit statuses. Parser and ``main`` only."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

import dovecote
from dovecote import cli
from dovecote.ops import status

COMMANDS = ("driver", "reconciler", "status", "graph", "doctor", "cleanup")


def subparsers(top: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"dovecote {dovecote.__version__}"


def test_help_describes_every_command_and_option_with_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    top = capsys.readouterr().out
    assert "composition root" not in top and "``" not in top
    assert "exit status: 0 ok, 1 problems found" in top
    for name in COMMANDS:
        assert f"    {name} " in top, name
    commands = subparsers(cli.parser())
    assert set(commands) == set(COMMANDS)
    for name, command in commands.items():
        for action in command._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{name} {action.option_strings[0]} has no help text"
        text = command.format_help()
        assert command.description and "``" not in text, name
        assert "--log-level" in text and "exit status:" in text, name

    def flat(name: str) -> str:
        return " ".join(commands[name].format_help().split())

    driver = flat("driver")
    assert "(default: /run/docker/plugins/ovs.sock)" in driver
    assert "(default: 60.0)" in driver and "(default: unix:/var/run/openvswitch/db.sock)" in driver
    assert "(default: 127.0.0.1:10930)" in flat("reconciler")
    assert "(default: 127.0.0.1:10931)" in driver
    assert "(default: /run/dovecote/reconciler-status.json)" in flat("status")
    assert "--yes" in flat("cleanup") and "--json" in flat("cleanup") and "--json" in flat("doctor")


@pytest.mark.parametrize(
    "argv",
    [
        ["--log-level", "debug", "--log-format", "json", "status"],
        ["status", "--log-level", "debug", "--log-format", "json"],
        ["status", "--log-level", "DEBUG", "--log-format", "JSON"],
    ],
)
def test_global_options_before_or_after_the_command(argv: list[str]) -> None:
    args = cli.parser().parse_args(argv)
    assert (args.command, args.log_level, args.log_format) == ("status", "debug", "json")


def test_global_options_default_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOVECOTE_LOG_LEVEL", "warning")
    args = cli.parser().parse_args(["status"])
    assert args.log_level == "warning" and args.log_format == "text"
    assert cli.parser().parse_args(["status", "--log-level", "error"]).log_level == "error"


@pytest.mark.parametrize(
    "argv, complaint",
    [
        (["--log-level", "verbose", "status"], "invalid choice: 'verbose'"),
        (["status", "--log-level", "verbose"], "invalid choice: 'verbose'"),
        (["status", "--log-format", "xml"], "invalid choice: 'xml'"),
        (["driver", "--orphan-grace", "soon"], "'soon' is not a number of seconds"),
        (["reconciler", "--faucet-config", "f", "--metrics-addr", "10930"], "'10930' is not HOST:PORT"),
        (["reconciler"], "--faucet-config"),
        (["nosuchcommand"], "invalid choice: 'nosuchcommand'"),
        ([], "required: COMMAND"),
    ],
)
def test_bad_usage_exits_2_with_the_reason_on_stderr(
    argv: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == cli.EXIT_USAGE == 2
    captured = capsys.readouterr()
    assert captured.out == "" and complaint in captured.err and "Traceback" not in captured.err


def test_an_invalid_level_from_the_environment_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOVECOTE_LOG_LEVEL", "verbose")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["status"])
    assert exit_.value.code == 2 and "DOVECOTE_LOG_LEVEL" in capsys.readouterr().err


def test_an_error_is_one_line_on_stderr_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(_args: argparse.Namespace) -> int:
        raise RuntimeError("OVSDB at unix:/x not reachable:\n  Could not retrieve schema")

    monkeypatch.setattr(status, "run", broken)
    assert cli.main(["status"]) == cli.EXIT_PROBLEMS == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "dovecote status: error: OVSDB at unix:/x not reachable: Could not retrieve schema\n"


def test_the_traceback_only_at_debug(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def broken(_args: argparse.Namespace) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(status, "run", broken)
    assert cli.main(["status", "--log-level", "debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: boom" in err


def test_a_value_only_checked_at_run_time_is_usage(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["reconciler", "--faucet-config", "/nonexistent/faucet.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dovecote reconciler: error: --faucet-config /nonexistent/faucet.yaml" in err


def test_help_formatter_shows_defaults_only_where_they_say_something() -> None:
    parser = argparse.ArgumentParser(formatter_class=cli.HelpFormatter)
    parser.add_argument("--a", default="x", help="an a")
    parser.add_argument("--b", action="store_true", help="a flag")
    parser.add_argument("--c", help="no default")
    parser.add_argument("--d", default="", help="empty")
    parser.add_argument("--e", default="y", help="says it (default: why)")
    text = " ".join(parser.format_help().split())
    assert "an a (default: x)" in text and "a flag --c" in text and "no default --d" in text
    assert "empty (default: '')" in text and "says it (default: why) " in text + " "


def test_docs_cli_md_is_the_help_texts() -> None:
    """docs/cli.md is what --help prints; a new or changed option needs scripts/cli-reference.sh."""
    documented = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    assert documented == cli.reference(), "docs/cli.md is out of date: run scripts/cli-reference.sh"
