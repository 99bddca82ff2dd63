"""Every ``python -m nriqa`` command's ``--help``: plain text (no RST backticks), a help line for every
option, positional and subcommand, and subcommands listed where users look for them."""
from __future__ import annotations

import argparse
import importlib

import pytest

from nriqa import __main__ as cli

#: subcommands a command dispatches by hand (``weights fetch NAME``), walked like the commands
HAND_SUBCOMMANDS = {"weights": ["fetch"]}


class _Parser(Exception):
    pass


def command_parser(monkeypatch, command: str, argv: list[str]) -> argparse.ArgumentParser:
    """The parser ``python -m nriqa COMMAND ARGV`` builds, caught at its first parse (no work done)."""
    def grab(self, *args, **kwargs):
        raise _Parser(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", grab)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", grab)
    module, func = cli.COMMANDS[command]
    with pytest.raises(_Parser) as caught:
        getattr(importlib.import_module(module), func)(argv)
    return caught.value.args[0]


def walk(parser: argparse.ArgumentParser, name: str):
    """``(name, parser)`` of ``parser`` and of every argparse subcommand below it."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, p in action.choices.items():
                yield from walk(p, f"{name} {sub}")


def all_parsers(monkeypatch):
    for command in cli.COMMANDS:
        yield from walk(command_parser(monkeypatch, command, []), command)
        for sub in HAND_SUBCOMMANDS.get(command, []):
            yield from walk(command_parser(monkeypatch, command, [sub]), f"{command} {sub}")


def test_top_level_help_lists_every_command_without_markup(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "`" not in out
    for command in cli.COMMANDS:
        assert f"\n  {command} " in out, f"{command} is not listed in python -m nriqa --help"
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("nriqa ")


def test_every_option_and_subcommand_has_plain_help(monkeypatch):
    problems, seen = [], []
    for name, parser in all_parsers(monkeypatch):
        seen.append(name)
        text = parser.format_help()
        if "`" in text:
            problems.append(f"{name}: backticks in --help: {[ln for ln in text.splitlines() if '`' in ln]}")
        if not (parser.description or "").strip():
            problems.append(f"{name}: no description")
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if isinstance(action, argparse._SubParsersAction):
                problems += [f"{name} {c.dest}: subcommand without help" for c in action._choices_actions
                             if not (c.help or "").strip()]
                continue
            if not (action.help or "").strip() or action.help == argparse.SUPPRESS:
                problems.append(f"{name}: {'/'.join(action.option_strings) or action.dest} has no help")
    assert set(cli.COMMANDS) <= set(seen) and "weights fetch" in seen
    assert not problems, "\n".join(problems)


def test_weights_help_lists_fetch(monkeypatch):
    text = command_parser(monkeypatch, "weights", []).format_help()
    assert "weights fetch" in " ".join(text.split())
