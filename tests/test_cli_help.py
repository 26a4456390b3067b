"""Every CLI command and subcommand has help that describes it."""

from __future__ import annotations

import argparse

from workers.cli import _parser


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                assert helps.get(name), f"{' '.join((*path, name))} has no help text"
                found += _commands(sub, (*path, name))
    return found


def test_every_command_has_help() -> None:
    commands = _commands(_parser())
    assert len(commands) > 25
    for path, parser in commands:
        text = parser.format_help()
        assert text.startswith("usage: orchestrator"), path
        for action in parser._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{' '.join(path)} {action.option_strings} lacks help"
