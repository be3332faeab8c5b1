"""How the commands explain themselves: each option's default said, and examples at the end of each `--help`.

The examples are written as the user types them (`fetal-iqa ...`, one line each); the tests parse
every one, so an example cannot outlive the options it uses.
"""

from __future__ import annotations

import argparse
import re

EXAMPLES_HEADING = "examples:"  # lower case, as argparse's own headings ("options:")
PROGRAM = "fetal-iqa"


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help with each meaningful default said, and indented lines (the examples, a table)
    kept as written while the prose around them is wrapped to the terminal."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if _has_default_to_say(action) and "default" not in text.lower():
            text += " (default: %(default)s)"
        return text

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for paragraph in text.split("\n\n"):
            lines = paragraph.splitlines()
            if any(line.startswith(" ") for line in lines):  # a heading and its indented lines: as written
                paragraphs.append("\n".join(indent + line for line in lines))
            else:
                paragraphs.append(super()._fill_text(paragraph, width, indent))
        return "\n\n".join(paragraphs)


def _has_default_to_say(action: argparse.Action) -> bool:
    """A value that is used when the option is not given: not None (automatic, or not asked for), not
    a flag's False, not a positional that must be given."""
    if action.default is None or action.default is False or action.default == argparse.SUPPRESS:
        return False  # by identity: a default of 0 is said
    return bool(action.option_strings) or action.nargs in ("?", "*")


def examples(*pairs: tuple[str, str]) -> str:
    """An epilog of (what it does, the command line) pairs, each a comment over a line to copy."""
    lines = [EXAMPLES_HEADING]
    for comment, command in pairs:
        lines += [f"  # {comment}", f"  {PROGRAM} {command}"]
    return "\n".join(lines)


def example_commands(help_text: str) -> list[str]:
    """The command lines (without `fetal-iqa`) of a `--help` text's examples."""
    _, _, section = help_text.partition(EXAMPLES_HEADING)
    return [match.group(1) for match in re.finditer(rf"^  {PROGRAM} (.*)$", section, re.MULTILINE)]


def add_command(commands, name: str, summary: str, description: str, how: tuple[tuple[str, str], ...]):
    """A subcommand with this formatter: `summary` in `fetal-iqa --help`, `description` over its own
    options, and the examples `how` after them."""
    return commands.add_parser(name, help=summary, description=description, epilog=examples(*how),
                               formatter_class=HelpFormatter)
