"""The command line: parses options, calls the Python API, renders. No arithmetic here."""

# No `from __future__ import annotations` here: typer reads every command's annotations when it
# builds the CLI, and string annotations would each be compiled and evaluated then, at every
# start (a few milliseconds; docs/benchmarks.md).

import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

import typer
from typer.core import TyperGroup

from . import __version__
from .errors import CnncalcError, OptionError

if TYPE_CHECKING:
    from .engine import Analysis

# Each command imports what it needs when it runs (start-up time: docs/benchmarks.md).


def _click_exception_types() -> tuple[type[BaseException], type[BaseException]]:
    """click's ClickException and Abort, wherever this typer keeps click (vendored or not)."""
    mro = typer.BadParameter.__mro__
    click_exception = next(c for c in mro if c.__name__ == "ClickException")
    abort = next(c for c in typer.Abort.__mro__ if c.__name__ == "Abort")
    return click_exception, abort


_ClickException, _Abort = _click_exception_types()


def _fail(message: str, code: int = 2) -> None:
    """The one error boundary's output: one line on stderr (control characters escaped: user
    text in a message cannot rewrite the terminal), then exit."""
    from .errors import printable

    try:
        sys.stderr.write(f"cnncalc: error: {printable(message)}\n")
        sys.stderr.flush()
    except (OSError, AttributeError):  # stderr itself is gone: the exit status is all that is left
        pass
    sys.exit(code)


class _Closed:
    """Stands for a standard stream that was closed before start (``>&-``: Python sets it to
    None): writing to it fails as writing to a closed descriptor does, and that is one line."""

    def write(self, text: str) -> int:
        import errno

        raise OSError(errno.EBADF, "the output is closed")

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        raise OSError("closed")

    def isatty(self) -> bool:
        return False


_OUTPUT_ERRORS = {"EPIPE": "the reader closed the pipe", "EBADF": "stdout is closed", "ENOSPC": "no space left on the device",
                  "EDQUOT": "the disk quota is exceeded", "EFBIG": "the file is too large",
                  "EIO": "an input/output error"}


def _output_failed(exc: OSError) -> None:
    """stdout could not be written (``> /dev/full``, a closed pipe): one line, exit 2, and
    stdout pointed at /dev/null so that the interpreter's last flush cannot fail again."""
    import errno
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real stdout (captured in tests)
        pass
    name = errno.errorcode.get(exc.errno or 0, "")
    if name in _OUTPUT_ERRORS:
        _fail(f"cannot write the output: {_OUTPUT_ERRORS[name]}")
    _fail(f"system error: {(exc.strerror or str(exc)).lower()}")


_debug = False  # set by --debug: user errors show their traceback before the line


def _traceback() -> None:
    if _debug:
        import traceback

        traceback.print_exc()


class _OutputFailed(Exception):
    """An OSError writing the output, carried past typer (which exits 1 silently on EPIPE)."""

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


class _OneLineErrors(TyperGroup):
    """Turns user errors (ours and click's usage errors) into one line on stderr and exit 2."""

    def invoke(self, ctx: Any) -> Any:
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()
            return result
        except OSError as exc:
            raise _OutputFailed(exc) from exc

    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        global _debug
        _debug = False
        if sys.stdout is None:
            sys.stdout = _Closed()  # type: ignore[assignment]
        try:
            result = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                                  standalone_mode=False, **extra)
            sys.stdout.flush()  # a full disk or closed pipe shows here, not at exit
        except CnncalcError as exc:
            _traceback()
            _fail(str(exc))
        except RecursionError:  # a structure deeper than the limits the loader checks
            _traceback()
            _fail("the input is nested too deeply to process")
        except MemoryError:
            _traceback()
            _fail("out of memory: the network is too large to process")
        except _ClickException as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # bare `cnncalc`: show the help
                sys.stderr.write(exc.format_message() + "\n")
                sys.exit(2)
            _fail(exc.format_message(), getattr(exc, "exit_code", 2))
        except _Abort:
            _fail("aborted", 1)
        except _OutputFailed as exc:  # writing stdout: reading a spec is caught where it is read
            _traceback()
            _output_failed(exc.error)
        except OSError as exc:  # stdout's last flush
            _traceback()
            _output_failed(exc)
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
    debug: bool = typer.Option(False, "--debug", envvar="CNNCALC_DEBUG",
                               help="On an error, show the traceback before the one-line message."),
) -> None:
    """cnncalc computes what a convolutional network costs, layer by layer, from a YAML spec.

    SPEC is a zoo name (`cnncalc list`) or a path to your own spec file.
    """
    global _debug
    _debug = debug


_stdin_spec: Any = None  # the spec read from stdin (`-`), read once however often it is named


# cnncalc.zoo's, imported when a command first needs them (not for --version or --help)
def load_spec(ref: str) -> Any:
    """A zoo name or file; ``-`` reads the spec's YAML from stdin."""
    global _stdin_spec
    if ref == "-":
        if _stdin_spec is None:
            from .spec import parse_spec_bytes

            if sys.stdin is None or sys.stdin.isatty():
                raise OptionError("SPEC is '-' but stdin is a terminal; pipe a spec in, as in "
                                  "`cat net.yaml | cnncalc table -`")
            # bounded as a file is (`yes | cnncalc table -` must not fill the memory)
            from .yamlio import MAX_YAML_CHARS

            stream = getattr(sys.stdin, "buffer", None)
            limit = MAX_YAML_CHARS * 4 + 1
            raw = stream.read(limit) if stream is not None else \
                sys.stdin.read(limit).encode("utf-8", "surrogateescape")
            _stdin_spec = parse_spec_bytes(raw, "<stdin>", "stdin")
        return _stdin_spec
    from .zoo import load_spec

    return load_spec(ref)


def zoo_names() -> list[str]:
    from .zoo import zoo_names

    return zoo_names()


def _complete_spec(incomplete: str) -> list[str]:
    """Shell completion of SPEC: the zoo names (the shell offers file names when none match)."""
    return [name for name in zoo_names() if name.startswith(incomplete)]


SpecArg = typer.Argument(..., metavar="SPEC",
                         help="A zoo name (see `cnncalc list`), a spec file, or - for stdin.",
                         autocompletion=_complete_spec)
InputOpt = typer.Option(None, "--input", "-i", metavar="CxHxW",
                        help="Input shape, e.g. 3x224x224 (default: the spec's own).")
BatchOpt = typer.Option(1, "--batch", "-b", min=1, max=2**63 - 1, help="Batch size: MACs and activations scale with it.")
DepthOpt = typer.Option(None, "--depth", "-d", min=1,
                        help="Collapse blocks below this depth (1 = top level). Default: every layer.")
FormatOpt = typer.Option(Format.table, "--format", "-f", help="Output format.")
ExactOpt = typer.Option(False, "--exact", "-e", help="Full integers instead of K/M/G units.")
DTypeOpt = typer.Option(DType.fp32, "--dtype", help="Bytes per element for memory figures.")
QuietOpt = typer.Option(False, "--quiet", "-q",
                        help="No warnings or notes on stderr (JSON keeps its warnings field).")
ColumnsOpt = typer.Option(
    None, "--columns", metavar="KEY,...",
    help="The table's columns, in order, after the layer: kind, input, output, settings, params, "
         "params%, trainable, buffers, macs, macs%, rf, act, share.")
def _out_option(help: str) -> Any:
    """``--out``/``-o FILE`` of a command that writes a file (cnncalc.output writes it)."""
    return typer.Option(None, "--out", "-o", metavar="FILE", help=help)


ForceOpt = typer.Option(False, "--force", help="Replace FILE if it exists (by default an "
                                                 "existing file is never overwritten).")
WideOpt = typer.Option(False, "--wide", "-w",
                       help="Every column, however narrow the terminal (it never drops any).")


def _warn(analyses: Any, quiet: bool) -> None:
    """Floor warnings and notes on stderr, after the output (as a terminal shows them: the last
    lines); for several analyses, one line per spec whose floors leave input unread."""
    if quiet:
        return
    from .render import warning_lines, wrap_words

    analyses = list(analyses)
    lines = []
    for analysis in analyses:
        if len(analyses) > 1:  # a comparison: one line per spec
            unread = [w.path for w in analysis.warnings if w.severity == "warning"]
            if unread:
                lines.append(f"warning: {analysis.spec.name}: {len(unread)} layer(s) floor a "
                             f"division and leave input unread: {', '.join(unread)} "
                             f"(`cnncalc table {analysis.spec.name}` says where)")
            continue
        for line in warning_lines(analysis):
            lines.append(line)
    if not lines:
        return
    width = _stderr_width()
    if width:  # a terminal: wrapped at spaces, so that no number is broken
        lines = [piece for line in lines for piece in wrap_words(line, width, indent="  ")]
    sys.stdout.flush()
    sys.stderr.write("".join(f"{line}\n" for line in lines))
    sys.stderr.flush()


def _stderr_width() -> Optional[int]:
    """The terminal's width where stderr is one (rich's rules: TTY_COMPATIBLE, isatty), else None."""
    import os

    tty = os.environ.get("TTY_COMPATIBLE", "")
    try:
        terminal = tty == "1" or (tty != "0" and sys.stderr.isatty())
    except (AttributeError, ValueError):
        terminal = False
    if not terminal:
        return None
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        return int(columns)
    import shutil

    return shutil.get_terminal_size().columns


def _console() -> Any:
    from . import render

    return render.console()


def _emit(format: Format, *, json: Callable[[], Any], csv: Callable[[], str],
          markdown: Callable[[], str], table: Callable[[], Any]) -> None:
    """Print in the chosen format; each renderer is called only when chosen."""
    from . import render

    if format is Format.json:
        render.write_json(json(), sys.stdout)
    elif format is Format.csv:
        sys.stdout.write(csv())
    elif format is Format.markdown:
        sys.stdout.write(markdown())
    else:
        _write_report(table())


def _write_report(report: Any) -> None:
    """A rendered table: plain text where there is no colour to add, else through rich."""
    from . import render

    text = render.plain_text(report)
    if text is None:
        _console().print(report, crop=False)
    else:
        sys.stdout.write(text)


# cnncalc.conventions.names(), written out so that parsing the options does not import the
# counting rules (tests/test_cli.py checks that the two agree)
CONVENTIONS = ("macs", "flops", "fvcore", "torchinfo", "ptflops", "thop")
ConventionName = Enum("ConventionName", {name: name for name in CONVENTIONS}, type=str)
ConventionOpt = typer.Option(
    "macs", "--convention", "-c",
    help="How MACs are counted: macs (default), flops (2 × MACs), or as fvcore, torchinfo, "
         "ptflops or thop count them (see `cnncalc reconcile`).")


def _check_channels(loaded: Any, input: Optional[str]) -> None:
    """Refuse an --input in channels-last order (224x224x3 for a 3-channel spec)."""
    if input is None:
        return
    from .spec import parse_shape

    try:
        shape = parse_shape(input)
    except ValueError:
        return  # the engine says what is wrong with it
    own = loaded.input
    if len(shape) == 3 and len(own) == 3 and shape[0] != own[0] and shape[2] == own[0]:
        c, h, w = shape
        raise OptionError(f"--input {input}: {c} channels, but {loaded.name} takes {own[0]}; "
                          f"cnncalc reads C×H×W (channels first): --input {w}x{c}x{h}")


def _analyse(spec: str, input: Optional[str], batch: int, dtype: DType,
             explain: bool = False, convention: Any = "macs") -> "Analysis":
    from .engine import analyze

    loaded = load_spec(spec)
    _check_channels(loaded, input)
    analysis = analyze(loaded, input=input, batch=batch, dtype=dtype.value, explain=explain)
    return _convention(analysis, convention)


def _convention(analysis: "Analysis", convention: Any) -> "Analysis":
    """The analysis counted under ``--convention`` (the engine's own count needs no import)."""
    name = getattr(convention, "value", convention)
    if name == analysis.convention:
        return analysis
    from .conventions import apply

    return apply(analysis, name)


@app.command(epilog="Example: cnncalc table alexnet --input 3x224x224 --exact")
def table(
    spec: str = SpecArg,
    input: Optional[str] = InputOpt,
    batch: int = BatchOpt,
    depth: Optional[int] = DepthOpt,
    format: Format = FormatOpt,
    exact: bool = ExactOpt,
    dtype: DType = DTypeOpt,
    explain: bool = typer.Option(
        False, "--explain", "-x",
        help="Show each layer's formulas with the numbers substituted (always in the JSON)."),
    convention: ConventionName = ConventionOpt,
    columns: Optional[str] = ColumnsOpt,
    wide: bool = WideOpt,
    quiet: bool = QuietOpt,
    roofline: Optional[str] = typer.Option(
        None, "--roofline", metavar="DEVICE",
        help="Per-layer roofline instead: FLOPs, bytes moved, bound and predicted time on DEVICE "
             "(a GPU such as H100 or A100, cpu after `profile --calibrate`, or "
             "custom:TFLOPS:GBps)."),
) -> None:
    """Layer-by-layer table: output shape, settings, params, MACs, receptive field, memory.

    A symbol in --input (3xHxW) gives sizes, MACs and memory as expressions in it.
    """
    from . import render

    if input is not None and _symbolic_input(input):
        from . import symbolic

        if convention.value != "macs":
            raise OptionError("--convention needs a numeric --input (no symbols)")
        if explain:
            raise OptionError("--explain needs a numeric --input (no symbols); with symbols the "
                              "table's 'where' lines give each size's formula")
        if roofline is not None:
            raise OptionError("--roofline needs a numeric --input (no symbols)")
        result = symbolic.analyze_symbolic(load_spec(spec), input, batch=batch, dtype=dtype.value)
        _emit(format,
              json=lambda: symbolic.result_dict(result, depth),
              csv=lambda: symbolic.result_csv(result, depth),
              markdown=lambda: symbolic.result_markdown(result, depth),
              table=lambda: symbolic.result_rich(result, depth))
        return
    if columns is not None:
        render.table_column_keys(columns)  # an unknown column is an error before any work
    if roofline is not None:
        from . import roofline as rl

        result = rl.roofline(_analyse(spec, input, batch, dtype), rl.resolve(roofline))
        _emit(format, json=lambda: rl.roofline_dict(result), csv=lambda: rl.roofline_csv(result),
              markdown=lambda: rl.roofline_markdown(result), table=lambda: rl.roofline_rich(result))
        return
    analysis = _analyse(spec, input, batch, dtype, explain=explain or format is Format.json,
                        convention=convention)
    numbers = render.Numbers(exact)
    _emit(format,
          json=lambda: render.analysis_dict(analysis, depth),
          csv=lambda: render.analysis_csv(analysis, depth),
          markdown=lambda: render.analysis_markdown(analysis, depth, numbers, columns, wide,
                                                    warnings=False),
          table=lambda: render.analysis_rich(analysis, depth, numbers, columns, wide,
                                             warnings=False))
    _warn([analysis], quiet)


def _symbolic_input(text: str) -> bool:
    from .symbolic import has_symbol

    return has_symbol(text)


class CheckFormat(str, Enum):
    table = "table"
    json = "json"


@app.command(epilog="Example: cnncalc check alexnet --input 3x224x224 --range 200:260")
def check(
    spec: str = SpecArg,
    input: Optional[str] = InputOpt,
    range: Optional[str] = typer.Option(
        None, "--range", "-r", metavar="LO:HI",
        help="Also list every exact size from LO to HI (square sizes for a square input; "
             "otherwise heights and widths apart, the other axis held)."),
    format: CheckFormat = typer.Option(CheckFormat.table, "--format", "-f", help="Output format."),
) -> None:
    """Which layers floor, and the nearest input sizes at which every division is exact.

    Lists each layer whose division is not exact and the input rows or columns it leaves unread.
    Exit 0 when the input is exact, 1 when not, 2 on errors.
    """
    from . import check as checking
    from . import render

    result = checking.check(load_spec(spec), input=input, size_range=range)
    if format is CheckFormat.json:
        sys.stdout.write(render.to_json(checking.check_dict(result)))
    else:
        report = render.Report()  # on a terminal, wrapped at spaces with a hanging indent
        for line in checking.check_lines(result):
            report.line(line)
        _write_report(report)
    raise typer.Exit(0 if result.ok else 1)


@app.command("list", epilog="Example: cnncalc list --exact")
def list_(
    format: Format = FormatOpt,
    exact: bool = ExactOpt,
    convention: ConventionName = ConventionOpt,
) -> None:
    """Every zoo spec with its title, input, params and MACs."""
    from . import render
    from .engine import analyze

    analyses = [_convention(analyze(load_spec(name)), convention) for name in zoo_names()]
    numbers = render.Numbers(exact)
    _emit(format,
          json=lambda: render.list_dict(analyses),
          csv=lambda: render.list_csv(analyses),
          markdown=lambda: render.list_markdown(analyses, numbers),
          table=lambda: render.list_rich(analyses, numbers))


@app.command(epilog="Example: cnncalc compare inception-naive inception-bottleneck --exact")
def compare(
    specs: list[str] = typer.Argument(..., metavar="SPEC...", help="Two or more zoo names or files.",
                                       autocompletion=_complete_spec),
    input: Optional[str] = InputOpt,
    batch: int = BatchOpt,
    depth: Optional[int] = typer.Option(
        None, "--depth", "-d", min=1,
        help="Compare the rows at this depth. Default: every path found in at least two specs."),
    format: Format = FormatOpt,
    exact: bool = ExactOpt,
    dtype: DType = DTypeOpt,
    convention: ConventionName = ConventionOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Totals side by side with ratios, then the rows (blocks, branches, layers) that match by path."""
    from . import render
    from .compare import compare as compare_analyses

    if len(specs) < 2:
        raise typer.BadParameter("compare needs at least two specs", param_hint="SPEC...")
    analyses = [_analyse(s, input, batch, dtype, convention=convention) for s in specs]
    comparison = compare_analyses(analyses, depth=depth or 0)
    numbers = render.Numbers(exact)
    _emit(format,
          json=lambda: render.comparison_dict(comparison, depth),
          csv=lambda: render.comparison_csv(comparison),
          markdown=lambda: render.comparison_markdown(comparison, numbers),
          table=lambda: render.comparison_rich(comparison, numbers))
    _warn(analyses, quiet)


@app.command(epilog="Example: cnncalc plot resnet50 --depth 2 --out resnet50.png")
def plot(
    spec: str = SpecArg,
    out: Optional[Path] = _out_option(
        "Where to write: .svg, .png or .pdf. Default: SPEC.svg in the current folder, from the "
        "SPEC you typed (nets/mine.yaml: mine.svg), never from the spec's name."),
    input: Optional[str] = InputOpt,
    batch: int = BatchOpt,
    depth: Optional[int] = DepthOpt,
    dtype: DType = DTypeOpt,
    force: bool = ForceOpt,
    log: bool = typer.Option(False, "--log", help="Logarithmic value axes (small layers show)."),
    quiet: bool = QuietOpt,
) -> None:
    """Bar charts of params, MACs and live activation memory per layer (needs matplotlib).

    Without --depth, a network of more layers than a picture holds is drawn at the deepest
    depth that fits, and the command says so.
    """
    from . import plot as plotting

    analysis = _analyse(spec, input, batch, dtype)
    written, collapsed = plotting.draw_report(analysis, depth,
                                              out or plotting.default_output(spec),
                                              overwrite=force, log=log)
    typer.echo(f"wrote {written}")
    if collapsed and not quiet:
        sys.stderr.write(f"note: {collapsed}\n")
    _warn([analysis], quiet)


@app.command(epilog="Example: cnncalc view googlenet -o googlenet.html")
def view(
    specs: list[str] = typer.Argument(..., metavar="SPEC...",
                                      help="One spec, or two to show side by side with the "
                                           "compare ratios (zoo names or files).",
                                      autocompletion=_complete_spec),
    out: Optional[Path] = _out_option(
        "Where to write the .html page. Default: SPEC.html (A-vs-B.html) in the current folder, "
        "from the SPEC you typed."),
    input: Optional[str] = InputOpt,
    batch: int = BatchOpt,
    depth: Optional[int] = typer.Option(None, "--depth", "-d", min=1,
                                        help="The depth the page opens at (default: every layer "
                                             "when they fit, else the deepest depth that does)."),
    dtype: DType = DTypeOpt,
    convention: ConventionName = ConventionOpt,
    force: bool = ForceOpt,
    quiet: bool = QuietOpt,
) -> None:
    """One self-contained HTML page: the network as a graph to open and close block by block,
    its per-layer table, each layer's figures and formulas (works offline)."""
    from . import view as viewing

    if len(specs) > 2:
        raise typer.BadParameter("view shows one spec, or two side by side", param_hint="SPEC...")
    if input is not None and _symbolic_input(input):
        raise OptionError("view needs a numeric --input (no symbols): the page shows numbers")
    target = out or viewing.default_output(specs)
    viewing.check_output(target, force)  # before any work
    analyses = [_analyse(s, input, batch, dtype, explain=True, convention=convention)
                for s in specs]
    comparison = None
    if len(analyses) > 1:
        from .compare import compare as compare_analyses

        comparison = compare_analyses(analyses)
    written = viewing.write(analyses, target, depth, comparison, overwrite=force)
    typer.echo(f"wrote {written}")
    _warn(analyses, quiet)


@app.command(epilog="Example: cnncalc show resnet18 > my-net.yaml")
def show(spec: str = SpecArg) -> None:
    """Print a spec's YAML, to copy and change, after comment lines with where it is from and
    its figures (still valid YAML: `cnncalc show alexnet > mine.yaml` gives a spec to edit)."""
    from .engine import analyze
    from .render import exact_count, shape_text

    if spec == "-":
        raise OptionError("show needs a zoo name or a file, not stdin")
    loaded = load_spec(spec)
    from .zoo import zoo_dir

    path = Path(loaded.file)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise OptionError(f"cannot read {path}: {exc.strerror or exc}") from None
    analysis = analyze(loaded)
    t = analysis.totals
    where = (f"the cnncalc zoo ({path.name})" if path.resolve().parent == zoo_dir().resolve()
             else str(path))
    header = [
        f"# {loaded.name}: {loaded.title}",
        f"# from {where}",
        f"# input {shape_text(analysis.input)} -> output {shape_text(analysis.output)}",
        f"# params {exact_count(t.params)}; MACs {exact_count(t.macs)} (batch 1)",
        f"# to change it: cnncalc show {spec} > my-net.yaml, edit, cnncalc table my-net.yaml",
    ]
    sys.stdout.write("\n".join(header) + "\n" + text + ("" if text.endswith("\n") else "\n"))


@app.command(epilog="Example: cnncalc schema > cnncalc.schema.json")
def schema() -> None:
    """Print the JSON Schema of the spec format, for editors that validate and complete YAML."""
    from .schema import schema_text

    sys.stdout.write(schema_text())


class Device(str, Enum):
    auto = "auto"
    cuda = "cuda"
    cpu = "cpu"


class AmpDType(str, Enum):
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"


class Mode(str, Enum):
    inference = "inference"
    training = "training"


class BackendFormat(str, Enum):
    table = "table"
    json = "json"


def _batch_sizes(text: str) -> tuple[int, ...]:
    from .errors import brief

    try:
        sizes = tuple(int(part) for part in text.split(",") if len(part.strip()) <= 19)
        if len(sizes) != len(text.split(",")):
            sizes = ()
    except ValueError:
        sizes = ()
    if not sizes or any(size < 1 or size > 2**63 - 1 for size in sizes):
        raise typer.BadParameter(f"expected positive batch sizes like 1,8,32, got {brief(text)}",
                                 param_hint="'--batch'")
    return sizes


def _print_backend(format: BackendFormat, as_dict: Callable[[], Any], rich: Callable[[], Any]) -> None:
    from . import render

    if format is BackendFormat.json:
        render.write_json(as_dict(), sys.stdout)
    else:
        _write_report(rich())


@app.command(epilog="Example: cnncalc verify resnet50 --batch 2")
def verify(
    spec: str = SpecArg,
    input: Optional[str] = InputOpt,
    batch: int = typer.Option(1, "--batch", "-b", min=1, max=2**63 - 1,
                              help="Batch size of the forward pass."),
    depth: Optional[int] = typer.Option(None, "--depth", "-d", min=1,
                                        help="Show rows at this depth (every row is checked)."),
    format: BackendFormat = typer.Option(BackendFormat.table, "--format", "-f", help="Output format."),
    against: Optional[str] = typer.Option(
        None, "--against", metavar="SOURCE",
        help="Compare with a real model instead of the spec's own build: path/to/model.py:factory "
             "or package.module:factory (docs/import.md)."),
) -> None:
    """Build the model in torch, run it once and check every row: shapes, params, buffers, MACs.

    With --against SOURCE, compare the spec with that model instead: per path and in total
    (params, buffers, fvcore's count, output shape), differences first. Needs the torch backend
    (pip install 'cnncalc[torch]'). Exit 0 when everything agrees, 1 when anything differs.
    """
    from . import backend

    loaded = load_spec(spec)
    from .engine import analyze

    if against is not None:
        if depth is not None:
            raise OptionError("--depth does not apply with --against (every difference is listed)")
        backend.require_torch()
        from .backend import report
        from .backend.against import verify_against

        compared = verify_against(loaded, against, input, batch)
        _print_backend(format, lambda: report.against_dict(compared),
                       lambda: report.against_rich(compared))
        if not compared.ok:
            raise typer.Exit(1)
        return

    backend.check_fits(analyze(loaded, input, batch=batch))  # before torch is even imported
    backend.require_torch()
    from .backend import report

    result = backend.verify(loaded, input, batch)
    result.analysis.at_depth(depth)  # validates --depth
    _print_backend(format, lambda: report.verification_dict(result, depth),
                   lambda: report.verification_rich(result, depth))
    if not result.ok:
        raise typer.Exit(1)


@app.command("import", epilog="Example: cnncalc import path/to/model.py:make_model --input 3x224x224 -o net.yaml")
def import_(
    source: str = typer.Argument(..., metavar="SOURCE",
                                 help="path/to/model.py:factory or package.module:factory (a "
                                      "callable returning an nn.Module), or a .onnx file."),
    input: Optional[str] = typer.Option(None, "--input", "-i", metavar="CxHxW",
                                        help="Input shape per sample (required for torch "
                                             "models, which have none of their own)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", metavar="FILE",
                                       help="Write the spec to FILE (default: stdout)."),
    allow_unknown: bool = typer.Option(
        False, "--allow-unknown",
        help="Write an op with no layer kind as a placeholder that counts nothing (and says so "
             "in the table's footer) instead of failing."),
    force: bool = typer.Option(False, "--force", help="Replace FILE if it exists (by default an "
                                                      "existing file is never overwritten)."),
) -> None:
    """Write a spec of a real model: its layers, settings and module paths, in cnncalc's format.

    A torch model is traced with torch.fx at --input; the spec is checked against the trace
    before it is written (every layer's output shape). Exit 2 on an op with no layer kind,
    naming it (docs/import.md).
    """
    from .importer.load import checked_yaml, import_source
    from .output import check_target, write_text

    shape = None
    if input is not None:
        from .spec import parse_shape

        try:
            shape = parse_shape(input)
        except ValueError as exc:
            raise OptionError(f"--input {input}: {exc}") from None
    if out is not None:  # refused before the (long) import, and again when written
        check_target(out, overwrite=force, label="--out")
    text = checked_yaml(import_source(source, shape, allow_unknown))
    if out is None:
        sys.stdout.write(text)
        return
    written = write_text(out, text, overwrite=force, label="--out")
    typer.echo(f"wrote {written}")


@app.command(epilog="Example: cnncalc profile resnet50 --device cuda --batch 1,8,32,128 --dtype bf16")
def profile(
    spec: str = SpecArg,
    input: Optional[str] = InputOpt,
    device: Device = typer.Option(Device.auto, "--device", help="cuda, cpu, or auto (cuda when available)."),
    batch: str = typer.Option("1", "--batch", "-b", help="Batch sizes to sweep, e.g. 1,8,32,128."),
    dtype: AmpDType = typer.Option(AmpDType.fp32, "--dtype", help="fp16 and bf16 run under autocast."),
    channels_last: bool = typer.Option(False, "--channels-last", help="NHWC memory format."),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the model (warm-up absorbs compilation)."),
    mode: Mode = typer.Option(Mode.inference, "--mode", help="training = forward, backward and an SGD step."),
    warmup: int = typer.Option(10, "--warmup", min=0, help="Untimed steps first."),
    iters: Optional[int] = typer.Option(None, "--iters", min=1, help="Time exactly this many single steps (instead of --min-time)."),
    min_time: float = typer.Option(1.0, "--min-time", min=0.01, help="Seconds of timed steps per batch size."),
    per_layer: bool = typer.Option(False, "--per-layer", help="torch.profiler time per layer beside its share of MACs."),
    calibrate: bool = typer.Option(False, "--calibrate", help="Measure matmul FLOP/s, copy bandwidth and per-op cost on the device (saved for `table --roofline cpu`); the roofline for --per-layer."),
    peak_tflops: Optional[float] = typer.Option(None, "--peak-tflops", min=0.001, help="Peak TFLOP/s for the fraction of peak (default: the datasheet's, on known GPUs)."),
    format: BackendFormat = typer.Option(BackendFormat.table, "--format", "-f", help="Output format."),
    save: Optional[Path] = typer.Option(None, "--save", help="Also write the JSON results to this file (never overwrites)."),
) -> None:
    """Time the built model per batch size beside the analysis: latency, throughput, TFLOP/s, memory.

    Verifies the model first (as `verify`). Needs the torch backend (pip install 'cnncalc[torch]').
    """
    from . import backend

    from .output import check_target, write_text

    sizes = _batch_sizes(batch)
    loaded = load_spec(spec)
    if save is not None:  # refused before the (long) profile, and again when it is written
        check_target(save, overwrite=False, label="--save")
    backend.require_torch()
    from . import render
    from .backend import report

    result = backend.profile(loaded, device=device.value, batches=sizes, dtype=dtype.value,
                             channels_last=channels_last, compile=compile, mode=mode.value,
                             warmup=warmup, iters=iters, min_time=min_time, per_layer=per_layer,
                             peak_tflops=peak_tflops, input=input, calibrate_device=calibrate)
    if save is not None:  # never overwrites, even a file that appeared while the profile ran
        write_text(save, render.to_json(report.profile_dict(result)), label="--save")
    _print_backend(format, lambda: report.profile_dict(result), lambda: report.profile_rich(result))
    if not result.verification.ok:
        raise typer.Exit(1)


@app.command(epilog="Example: cnncalc reconcile resnet50 --exact")
def reconcile(
    spec: str = SpecArg,
    input: Optional[str] = InputOpt,
    batch: int = BatchOpt,
    format: Format = FormatOpt,
    exact: bool = ExactOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Every counting convention's total, and where and why each differs from plain MACs.

    Conventions: macs, flops, fvcore, torchinfo, ptflops, thop (docs/counting.md), operator by
    operator.
    """
    from . import render
    from .conventions import reconcile as reconcile_conventions

    rec = reconcile_conventions(_analyse(spec, input, batch, DType.fp32))
    numbers = render.Numbers(exact)
    _emit(format,
          json=lambda: render.reconcile_dict(rec),
          csv=lambda: render.reconcile_csv(rec),
          markdown=lambda: render.reconcile_markdown(rec, numbers),
          table=lambda: render.reconcile_rich(rec, numbers))
    _warn([rec.analysis], quiet)


class Optimizer(str, Enum):
    sgd = "sgd"
    momentum = "momentum"
    adam = "adam"


@app.command(epilog="Example: cnncalc memory resnet50 --batch 32 --optimizer adam")
def memory(
    spec: str = SpecArg,
    input: Optional[str] = InputOpt,
    batch: int = BatchOpt,
    dtype: DType = DTypeOpt,
    optimizer: Optimizer = typer.Option(
        Optimizer.sgd, "--optimizer",
        help="Optimizer state per trainable parameter: sgd 0, momentum 1, adam 2 copies."),
    layers: bool = typer.Option(True, "--layers/--no-layers", help="Show the per-layer table."),
    keep_grads: bool = typer.Option(
        False, "--keep-grads",
        help="Gradients kept between steps (zero_grad(set_to_none=False)); default: freed, "
             "torch's default."),
    mixed: bool = typer.Option(
        False, "--mixed", help="Parameters, gradients and state in fp32 (autocast to --dtype)."),
    format: Format = FormatOpt,
    exact: bool = ExactOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Inference peak memory with liveness; training memory and training MACs.

    Training memory: parameters, gradients, optimizer state and the activations saved for
    backward. Assumptions: docs/memory.md.
    """
    from . import render
    from .memory import memory as memory_model

    report = memory_model(_analyse(spec, input, batch, dtype), optimizer.value,
                          param_dtype="fp32" if mixed else None, set_to_none=not keep_grads)
    numbers = render.Numbers(exact)
    _emit(format,
          json=lambda: render.memory_dict(report, layers),
          csv=lambda: render.memory_csv(report),
          markdown=lambda: render.memory_markdown(report, numbers, layers),
          table=lambda: render.memory_rich(report, numbers, layers))
    _warn([report.analysis], quiet)


def main() -> None:
    """Console-script entry point."""
    import gc

    gc.freeze()  # what is loaded now lives until exit: the collector need not scan it again
    # A 100,000-layer analysis makes millions of small objects and few cycles: collecting every
    # 700 allocations cost 20-48 % of `table --format json` (issue 11); every 100,000 keeps
    # memory bounded at a fraction of the cost.
    gc.set_threshold(100_000, 50, 100)
    app()
