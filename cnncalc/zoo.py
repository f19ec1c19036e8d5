"""The zoo: specs shipped with cnncalc, found by name; and resolving what a user typed."""

from __future__ import annotations

import difflib
import os
import re
from functools import lru_cache
from pathlib import Path

from .errors import Location, SpecError, SpecNotFound
from .spec import Spec, read_spec_file

_PACKAGED = Path(__file__).resolve().parent / "specs"  # inside an installed wheel
_SOURCE = Path(__file__).resolve().parent.parent / "specs"  # a source checkout / editable install


def zoo_dir() -> Path:
    """The folder holding the zoo's ``*.yaml`` files."""
    return _PACKAGED if _PACKAGED.is_dir() else _SOURCE


def _natural(name: str) -> list[object]:
    """Sort key that puts resnet18 before resnet101."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def zoo_names() -> list[str]:
    """Names of every zoo spec, in natural order (resnet18 before resnet101)."""
    return sorted((p.stem for p in zoo_dir().glob("*.yaml")), key=_natural)


def _looks_like_path(ref: str) -> bool:
    return any(sep in ref for sep in ("/", "\\")) or ref.endswith((".yaml", ".yml", ".onnx"))


def read_onnx_spec(path: Path) -> Spec:
    """An ONNX file read as a spec: imported (cnncalc.importer.onnx_reader, which needs the
    ``onnx`` package, imported only here), written as spec text and parsed, so it is counted by
    the rules a written spec is; errors name the ``.onnx`` file."""
    from .spec import parse_spec

    try:
        from .importer.onnx_reader import from_onnx
        from .importer.write import to_yaml
    except ImportError as exc:
        raise SpecError(f"reading ONNX files needs the onnx package ({exc.name or exc} is not "
                        "installed): pip install 'cnncalc[onnx]'", Location(str(path))) from None
    from .engine import analyze
    from .importer import check_shapes

    model = from_onnx(path)
    spec = parse_spec(to_yaml(model), str(path), path.stem)
    check_shapes(model, analyze(spec))
    return spec


@lru_cache(maxsize=64)
def _load_zoo(name: str) -> Spec:
    spec = read_spec_file(zoo_dir() / f"{name}.yaml")
    return spec


def load_spec(ref: str | Path) -> Spec:
    """Load a spec by zoo name (``alexnet``) or by path (``nets/mine.yaml``).

    A name that is neither raises :class:`SpecNotFound` with the closest zoo names.
    """
    text = str(ref)
    if not text.strip():
        raise SpecNotFound("SPEC is empty: give a zoo name (`cnncalc list` shows the zoo) or a "
                           "spec file")
    path = Path(text)
    if isinstance(ref, Path) or _looks_like_path(text) or (path.exists() and text not in zoo_names()):
        if not os.path.lexists(path) and path.stem in zoo_names():
            raise SpecError(f"no such file; the zoo has {path.stem!r} (without a path or "
                            f"extension: cnncalc table {path.stem})", Location(text))
        if path.suffix.lower() == ".onnx":
            return read_onnx_spec(path)
        return read_spec_file(path)
    if text in zoo_names():
        return _load_zoo(text)
    close = difflib.get_close_matches(text, zoo_names(), n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(close)}?" if close else "; `cnncalc list` shows the zoo"
    raise SpecNotFound(f"no zoo spec or file named {text!r}{hint}")
