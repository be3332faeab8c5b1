"""`--help` teaches: every argument explained with its default, examples that parse, the exit statuses listed."""

import argparse
import shlex

import pytest

from fetal_iqa_gui.base.errors import FetalIqaError
from fetal_iqa_gui.cli import EXIT_STATUSES, build_parser, main
from fetal_iqa_gui.cli.helptext import example_commands
from fetal_iqa_gui.runs import cluster  # noqa: F401  (its errors are among those whose statuses must be listed)


def commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    subparsers = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return dict(subparsers.choices)


def help_of(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def all_arguments():
    for name, parser in {"fetal-iqa": build_parser(), **commands()}.items():
        for action in parser._actions:
            if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                yield name, action


@pytest.mark.parametrize("command, action", list(all_arguments()),
                         ids=lambda value: value if isinstance(value, str) else "/".join(value.option_strings)
                         or value.metavar or value.dest)
def test_every_argument_says_what_it_is(command, action):
    assert action.help and action.help != argparse.SUPPRESS, f"{command}: {action.dest} has no help"


@pytest.mark.parametrize("command", sorted(commands()))
def test_every_command_ends_with_examples_that_parse(command, capsys):
    text = help_of([command], capsys)
    assert "\nexamples:\n" in text and text.rstrip().splitlines()[-1].startswith("  fetal-iqa ")
    shown = example_commands(text)
    assert 2 <= len(shown) <= 3
    for line in shown:
        argv = shlex.split(line)
        assert next(word for word in argv if not word.startswith("-")) == command, line  # its own command
        try:
            build_parser().parse_args(argv)  # parsed only: nothing runs
        except SystemExit as refused:
            pytest.fail(f"the example `fetal-iqa {line}` does not parse (exit {refused.code}): "
                        f"{capsys.readouterr().err}")


@pytest.mark.parametrize("command", ["", *sorted(commands())])
def test_defaults_are_said_and_nothing_else(command, capsys):
    text = help_of([command] if command else [], capsys)
    assert "default: None" not in text and "default: False" not in text


def test_defaults_are_said_where_they_apply(capsys):
    synth = help_of(["synth"], capsys)
    assert "how many cases (default: 1)" in synth
    assert "(default: 0)" in synth  # --seed: a default of 0 is still a default
    assert "(default: 140)" in synth
    train = " ".join(help_of(["train"], capsys).split())  # unwrapped
    assert "learning rate (default: 0.0003)" in train and "(default: val_loss)" in train
    score = " ".join(help_of(["score"], capsys).split())
    assert "else cpu (default: auto)" in score  # an engine option: its help from engine/choice.py, then the default
    assert "--force replace existing outputs" in score  # a flag: no default said


def test_the_program_help_lists_the_exit_statuses(capsys):
    text = help_of([], capsys)
    assert "exit status:" in text
    for code, meaning in ((0, "done"), (1, "could not be written"), (2, "bad input or usage"), (130, "interrupted"),
                          (141, "stopped reading"), (143, "terminated")):
        assert any(line.split()[:1] == [str(code)] and meaning in line for line in text.splitlines()), code


def subclasses(kind):
    for sub in kind.__subclasses__():
        yield sub
        yield from subclasses(sub)


def test_every_error_status_is_one_the_help_lists():
    listed = {code for code, _ in EXIT_STATUSES}
    assert {error.exit_code for error in subclasses(FetalIqaError)} | {FetalIqaError.exit_code} <= listed
