"""`pipectl completion bash|zsh|fish`: the shell's completion script, printed.

The script calls pipectl back with ``_PIPECTL_COMPLETE`` set (click's mechanism); pipectl
then completes commands and options, and, from the project in ``-p`` (default: the current
folder), processor names and aliases, phases, topics, subscriptions, targets of
pipectl.yaml, entity keys and the selection methods. Completion never prints an error: a
folder without a project completes commands and options only.

Bash splits the words it hands a completion function at every character of
``COMP_WORDBREAKS`` (``:`` and ``=`` among them), so ``--select tag:ni`` arrives as the three
words ``tag``, ``:``, ``ni`` and click's own bash support completes ``ni`` as if it were a
processor name. :class:`BashComplete` (registered for ``bash`` in place of click's) does what
bash-completion's ``_get_comp_words_by_ref -n :`` and ``__ltrim_colon_completions`` do,
without needing that package: its script also passes ``COMP_LINE``, ``COMP_POINT`` and
``COMP_WORDBREAKS``, the words are split from the line up to the cursor (so the word being
completed is ``tag:ni``), and each completion is sent without the part of that word up to
its last word-break character (``nightly``), which is all readline replaces. A script
installed by an older pipectl (without ``COMP_LINE``) gets click's behaviour, as before.
"""
from __future__ import annotations

import os

import click
from click.shell_completion import BashComplete as _ClickBashComplete
from click.shell_completion import CompletionItem, add_completion_class, split_arg_string

SHELLS = ("bash", "zsh", "fish")
INSTALL = {
    "bash": 'eval "$(pipectl completion bash)"            # in ~/.bashrc',
    "zsh": 'eval "$(pipectl completion zsh)"             # in ~/.zshrc, after compinit',
    "fish": "pipectl completion fish > ~/.config/fish/completions/pipectl.fish",
}
DEFAULT_WORDBREAKS = " \t\n\"'><=;|&(:"  # bash's default COMP_WORDBREAKS

# click's bash script, plus COMP_LINE / COMP_POINT / COMP_WORDBREAKS for pipectl, `read -r`
# (a backslash in a value stays) and quoted values (a `stg_*` completion is not globbed)
_SOURCE_BASH = """\
%(complete_func)s() {
    local IFS=$'\\n'
    local response

    response=$(env COMP_WORDS="${COMP_WORDS[*]}" COMP_CWORD=$COMP_CWORD COMP_LINE="$COMP_LINE" \\
COMP_POINT=$COMP_POINT COMP_WORDBREAKS="$COMP_WORDBREAKS" %(complete_var)s=bash_complete $1)

    for completion in $response; do
        IFS=',' read -r type value <<< "$completion"

        if [[ $type == 'dir' ]]; then
            COMPREPLY=()
            compopt -o dirnames
        elif [[ $type == 'file' ]]; then
            COMPREPLY=()
            compopt -o default
        elif [[ $type == 'plain' && -n $value ]]; then
            COMPREPLY+=("$value")
        fi
    done

    return 0
}

%(complete_func)s_setup() {
    complete -o nosort -F %(complete_func)s %(prog_name)s
}

%(complete_func)s_setup;
"""


class BashComplete(_ClickBashComplete):
    """Bash completion that completes words containing ``:`` or ``=`` whole (module docstring)."""

    source_template = _SOURCE_BASH
    trim = ""  # the start of the word being completed that readline keeps (up to its last word break)

    def get_completion_args(self) -> tuple[list[str], str]:
        line, point = os.environ.get("COMP_LINE"), os.environ.get("COMP_POINT", "")
        if line is None or not point.isdigit():
            return super().get_completion_args()  # a script from an older pipectl: click's split
        typed = line[:int(point)]
        words = split_arg_string(typed)
        last = typed[-1:]
        if not words or (last.isspace() and not words[-1].endswith(last)):
            incomplete = ""  # the cursor follows a space: a new word starts
        else:
            incomplete = words.pop()
        self.trim = _kept_prefix(typed, incomplete, os.environ.get("COMP_WORDBREAKS", DEFAULT_WORDBREAKS))
        return words[1:], incomplete

    def format_completion(self, item: CompletionItem) -> str:
        value = item.value
        if item.type == "plain" and self.trim and isinstance(value, str) and value.startswith(self.trim):
            value = value[len(self.trim):]
        return f"{item.type},{value}"


def _kept_prefix(typed: str, incomplete: str, wordbreaks: str) -> str:
    """The part of ``incomplete`` that readline does not replace: up to and including its
    last word-break character. Nothing for a quoted or escaped word (readline does not break
    inside quotes, and the word's text differs from ``incomplete`` there)."""
    if not incomplete or not typed.endswith(incomplete):
        return ""
    before = typed[:len(typed) - len(incomplete)][-1:]
    if before and not before.isspace():
        return ""  # an opening quote or a backslash: the shell's word is not this text
    cut = max(incomplete.rfind(c) for c in wordbreaks if not c.isspace()) if wordbreaks.strip() else -1
    return incomplete[:cut + 1] if cut >= 0 else ""


add_completion_class(BashComplete, "bash")


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
