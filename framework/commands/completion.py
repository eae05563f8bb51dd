"""`pipectl completion bash|zsh|fish`: the shell's completion script, printed.

The script calls pipectl back with ``_PIPECTL_COMPLETE`` set (click's mechanism); pipectl
then completes commands and options, and, from the project in ``-p`` (default: the current
folder), processor names and aliases, phases, topics, subscriptions, targets of
pipectl.yaml, entity keys and the selection methods. Completion never prints an error: a
folder without a project completes commands and options only.
"""
from __future__ import annotations

import click

SHELLS = ("bash", "zsh", "fish")
INSTALL = {
    "bash": 'eval "$(pipectl completion bash)"            # in ~/.bashrc',
    "zsh": 'eval "$(pipectl completion zsh)"             # in ~/.zshrc, after compinit',
    "fish": "pipectl completion fish > ~/.config/fish/completions/pipectl.fish",
}


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion_cmd(ctx: click.Context, shell: str) -> None:
    """Print the completion script of SHELL (bash, zsh or fish).

    \b
    bash:  eval "$(pipectl completion bash)"     (in ~/.bashrc)
    zsh:   eval "$(pipectl completion zsh)"      (in ~/.zshrc, after compinit)
    fish:  pipectl completion fish > ~/.config/fish/completions/pipectl.fish
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    if cls is None:  # pragma: no cover - click ships all three
        raise click.UsageError(f"click has no completion for {shell}")
    root = ctx.find_root().command  # the `pipectl` group (the CLI layer sits above the commands)
    click.echo(cls(root, {}, "pipectl", "_PIPECTL_COMPLETE").source())
