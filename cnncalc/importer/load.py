"""``cnncalc import SOURCE``: which frontend reads SOURCE, and the check every import passes.

:func:`import_source` sends an ``.onnx`` file to the ONNX frontend and anything else
(``path/to/file.py:factory``, ``package.module:factory``) to the torch one. :func:`checked_yaml`
writes the spec and holds it to the model: the spec is parsed and analysed by the same code as a
hand-written one, and every layer's output shape must equal the shape the frontend saw (traced,
or read from the file), so an import that the engine would count differently is an error, not a
spec. Nothing here imports torch or onnx.
"""

from __future__ import annotations

from typing import Any

from ..errors import CnncalcError
from . import ImportedModel


class ImportFailed(CnncalcError):
    """A model that cannot be imported (one line, exit status 2)."""


def shape_text(shape: Any) -> str:
    return "×".join(str(d) for d in shape)


def import_source(source: str, input_shape: tuple[int, ...] | None = None,
                  allow_unknown: bool = False) -> ImportedModel:
    """The model SOURCE names, read by its frontend (torch for a factory, ONNX for a file)."""
    if source.lower().endswith(".onnx"):
        try:
            from .onnx_reader import from_onnx
        except ModuleNotFoundError as exc:  # a build without the ONNX frontend
            if exc.name != f"{__package__}.onnx_reader":
                raise
            raise ImportFailed("this cnncalc cannot import ONNX files (no ONNX frontend)") from None
        return from_onnx(source, input_shape, allow_unknown)
    from .torch_fx import from_source

    return from_source(source, input_shape, allow_unknown)


def checked_yaml(model: ImportedModel) -> str:
    """The spec text of ``model`` (:func:`cnncalc.importer.write.to_yaml`), after checking that
    the engine reads it as the frontend saw the model: it loads, and each layer's output (in
    order) and the outputs have the shapes recorded in the :class:`ImportedModel`."""
    from ..engine import analyze
    from ..spec import parse_spec
    from .write import to_yaml

    text = to_yaml(model)
    try:
        analysis = analyze(parse_spec(text, f"{model.name}.yaml", model.name))
    except CnncalcError as exc:
        raise ImportFailed(f"the spec imported from {model.source} does not load ({exc}); this "
                           "is a bug in cnncalc's importer: please report it") from None
    rows = [row for row in analysis.rows if row.leaf]
    if len(rows) != len(model.layers):
        raise ImportFailed(f"the spec imported from {model.source} has {len(rows)} layers for "
                           f"the model's {len(model.layers)}; this is a bug in cnncalc's importer")
    for row, layer in zip(rows, model.layers):
        if layer.shape is not None and tuple(row.output) != tuple(layer.shape):
            where = f" ({layer.origin})" if layer.origin else ""
            raise ImportFailed(
                f"cannot import {model.source}: {layer.path}{where} makes "
                f"{shape_text(layer.shape)} in the model but {shape_text(row.output)} as the "
                f"{layer.kind} layer it was read as; cnncalc cannot express this op faithfully")
    return text


__all__ = ["ImportFailed", "checked_yaml", "import_source"]
