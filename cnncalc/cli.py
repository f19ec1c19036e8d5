"""The command line: parses options, calls the Python API, renders. No arithmetic here."""

from __future__ import annotations

import sys
from enum import Enum
from typing import Any, Callable, Optional

import typer
from typer.core import TyperGroup

from . import __version__
from .compare import compare as compare_analyses
from .engine import Analysis, analyze
from .errors import CnncalcError
from .zoo import load_spec, zoo_names


def _click_exception_types() -> tuple[type[BaseException], type[BaseException]]:
    """click's ClickException and Abort, wherever this typer keeps click (vendored or not)."""
    mro = typer.BadParameter.__mro__
    click_exception = next(c for c in mro if c.__name__ == "ClickException")
    abort = next(c for c in typer.Abort.__mro__ if c.__name__ == "Abort")
    return click_exception, abort


_ClickException, _Abort = _click_exception_types()


def _fail(message: str, code: int = 2) -> None:
    """The one error boundary's output: one line on stderr, then exit."""
    sys.stderr.write(f"cnncalc: error: {message}\n")
    sys.stderr.flush()
    sys.exit(code)


class _OneLineErrors(TyperGroup):
    """Turns user errors (ours and click's usage errors) into one line on stderr and exit 2."""

    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            result = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                                  standalone_mode=False, **extra)
        except CnncalcError as exc:
            _fail(str(exc))
        except _ClickException as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # bare `cnncalc`: show the help
                sys.stderr.write(exc.format_message() + "\n")
                sys.exit(2)
            _fail(exc.format_message(), getattr(exc, "exit_code", 2))
        except _Abort:
            _fail("aborted", 1)
        code = result if isinstance(result, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(
    cls=_OneLineErrors,
    name="cnncalc",
    help="Exact shapes, parameters, multiply-adds, receptive fields and memory of CNNs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


class DType(str, Enum):
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"
    fp64 = "fp64"
    int8 = "int8"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cnncalc {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """cnncalc computes what a convolutional network costs, layer by layer, from a YAML spec.

    SPEC is a zoo name (`cnncalc list`) or a path to your own spec file.
    """


SpecArg = typer.Argument(..., metavar="SPEC", help="A zoo name (see `cnncalc list`) or a spec file.")
InputOpt = typer.Option(None, "--input", "-i", metavar="CxHxW",
                        help="Input shape, e.g. 3x224x224 (default: the spec's own).")
BatchOpt = typer.Option(1, "--batch", "-b", min=1, help="Batch size: MACs and activations scale with it.")
DepthOpt = typer.Option(None, "--depth", "-d", min=1,
                        help="Collapse blocks below this depth (1 = top level). Default: every layer.")
FormatOpt = typer.Option(Format.table, "--format", "-f", help="Output format.")
ExactOpt = typer.Option(False, "--exact", "-e", help="Full integers instead of K/M/G units.")
DTypeOpt = typer.Option(DType.fp32, "--dtype", help="Bytes per element for memory figures.")


def _console() -> Any:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 200))
    return console


def _emit(format: Format, *, json: Callable[[], Any], csv: Callable[[], str],
          markdown: Callable[[], str], table: Callable[[], Any]) -> None:
    """Print in the chosen format; each renderer is called only when chosen."""
    from . import render

    if format is Format.json:
        sys.stdout.write(render.to_json(json()))
    elif format is Format.csv:
        sys.stdout.write(csv())
    elif format is Format.markdown:
        sys.stdout.write(markdown())
    else:
        _console().print(table())


def _analyse(spec: str, input: Optional[str], batch: int, dtype: DType) -> Analysis:
    return analyze(load_spec(spec), input=input, batch=batch, dtype=dtype.value)


@app.command(epilog="Example: cnncalc table alexnet --input 3x224x224 --exact")
def table(
    spec: str = SpecArg,
    input: Optional[str] = InputOpt,
    batch: int = BatchOpt,
    depth: Optional[int] = DepthOpt,
    format: Format = FormatOpt,
    exact: bool = ExactOpt,
    dtype: DType = DTypeOpt,
) -> None:
    """Layer-by-layer table: output shape, settings, params, MACs, receptive field, memory."""
    from . import render

    analysis = _analyse(spec, input, batch, dtype)
    numbers = render.Numbers(exact)
    _emit(format,
          json=lambda: render.analysis_dict(analysis, depth),
          csv=lambda: render.analysis_csv(analysis, depth),
          markdown=lambda: render.analysis_markdown(analysis, depth, numbers),
          table=lambda: render.analysis_rich(analysis, depth, numbers))


@app.command("list", epilog="Example: cnncalc list --exact")
def list_(
    format: Format = FormatOpt,
    exact: bool = ExactOpt,
) -> None:
    """Every zoo spec with its title, input, params and MACs."""
    from . import render

    analyses = [analyze(load_spec(name)) for name in zoo_names()]
    numbers = render.Numbers(exact)
    _emit(format,
          json=lambda: render.list_dict(analyses),
          csv=lambda: render.list_csv(analyses),
          markdown=lambda: render.list_markdown(analyses, numbers),
          table=lambda: render.list_rich(analyses, numbers))


@app.command(epilog="Example: cnncalc compare inception-naive inception-bottleneck --exact")
def compare(
    specs: list[str] = typer.Argument(..., metavar="SPEC...", help="Two or more zoo names or files."),
    input: Optional[str] = InputOpt,
    batch: int = BatchOpt,
    depth: Optional[int] = typer.Option(
        None, "--depth", "-d", min=1,
        help="Compare the rows at this depth. Default: every path found in at least two specs."),
    format: Format = FormatOpt,
    exact: bool = ExactOpt,
    dtype: DType = DTypeOpt,
) -> None:
    """Totals side by side with ratios, then the rows (blocks, branches, layers) that match by path."""
    from . import render

    if len(specs) < 2:
        raise typer.BadParameter("compare needs at least two specs", param_hint="SPEC...")
    analyses = [_analyse(s, input, batch, dtype) for s in specs]
    comparison = compare_analyses(analyses, depth=depth or 0)
    numbers = render.Numbers(exact)
    _emit(format,
          json=lambda: render.comparison_dict(comparison, depth),
          csv=lambda: render.comparison_csv(comparison),
          markdown=lambda: render.comparison_markdown(comparison, numbers),
          table=lambda: render.comparison_rich(comparison, numbers))


def main() -> None:
    """Console-script entry point."""
    app()
