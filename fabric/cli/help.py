"""What `fabric ... --help` shows beside each parameter: its metavar or choices, never a type.

Typer (0.29) prints every parameter's Python type beside it (`<str>`, `<list[str]>`, `<float>`,
and `<bool>` even beside a flag such as `--help`). Fabric's help text says in words what a
value is (`NAME=VALUE`, `cpu (cores), memory (GiB)`), so beside a parameter stands only what
adds to that: the metavar it was given, the values it may take, or (for an option that takes
a value, not a flag) its name, so that it does not read as a flag. Typer makes its parameter
objects itself, with no say over their class, so the one way to change what they show is
their class's method; `fabric.cli.main` does it once, before the app is built.
"""

from __future__ import annotations

from typer import _click  # Typer vendors Click
from typer.core import TyperArgument, TyperOption


def _option_shown(self: TyperOption, ctx: _click.Context) -> str | None:
    if self.metavar is not None:
        return self.metavar
    if self.type_descriptor.is_choice:
        return self.display_type(ctx)
    # Empty, not None, for a flag: Click's plain help (TYPER_USE_RICH=0) prints this after
    # the option. One that takes a value shows its name, as argparse does: `--user USER`.
    return "" if self.is_flag or self.count or not self.name else self.name.upper()


def _argument_shown(self: TyperArgument, ctx: _click.Context) -> str | None:
    # The argument's name (or metavar) is in the column beside already.
    return self.display_type(ctx) if self.type_descriptor.is_choice else None


def hide_type_tags() -> None:
    """Show beside each option its metavar or choices, and beside an argument its choices."""
    TyperOption.display_type_rich = _option_shown  # type: ignore[method-assign]
    TyperArgument.display_type_rich = _argument_shown  # type: ignore[method-assign]
