"""Every option of every command says what it does (issue 16): `--help` is the first manual."""

import click

from reconciler.cli import cli


def commands(group: click.Group, prefix: str = ""):
    for name, command in group.commands.items():
        yield f"{prefix}{name}", command
        if isinstance(command, click.Group):
            yield from commands(command, f"{prefix}{name} ")


def test_every_option_has_help_text():
    missing = [
        f"{name} {'/'.join(param.opts)}"
        for name, command in commands(cli)
        for param in command.params
        if isinstance(param, click.Option) and not (param.help or "").strip()
    ]
    assert missing == []


def test_every_command_has_a_summary():
    assert [name for name, command in commands(cli) if not (command.help or "").strip()] == []


def test_shell_completion_scripts_come_out_for_bash_zsh_and_fish():
    import os
    import subprocess
    import sys

    for shell in ("bash", "zsh", "fish"):
        env = {**os.environ, "_SYFT_RECONCILER_COMPLETE": f"{shell}_source"}
        done = subprocess.run(
            [sys.executable, "-m", "reconciler"],
            env=env,
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        assert done.returncode == 0 and "_SYFT_RECONCILER_COMPLETE" in done.stdout, done.stderr
