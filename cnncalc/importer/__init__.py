"""Import a real model as a spec: the form every importer fills, and its one writer.

A frontend (``torch_fx`` for an ``nn.Module``, ``onnx_reader`` for an ONNX file) turns a model
into an :class:`ImportedModel`: its layers in topological order, each with a cnncalc layer kind,
that kind's spec fields, the tensors it reads and the tensor it makes. :func:`cnncalc.importer.
write.to_yaml` turns that into spec text for people. Analyses never read an ImportedModel: they
parse the written spec, so an imported model is counted by exactly the rules a hand-written one
is. This module and ``write`` import nothing heavier than the standard library; the frontends
import torch or onnx, and only when called.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GRAPH_INPUT = "input"  # the tensor name of the model's input in ImportedLayer.inputs


@dataclass
class ImportedLayer:
    """One layer of an imported model.

    ``path`` is the dotted module path in the source model (``layer3.2.conv1``: the module
    ``layer3.2.conv1``), or for a functional op a generated name inside its module
    (``layer3.2.add``); paths are unique. ``config`` holds the kind's spec fields (not
    ``name``/``as``/``from``/``with``). ``inputs`` are tensor names, the main input first
    (:data:`GRAPH_INPUT` for the model's input); ``output`` is the tensor it makes.
    ``origin`` says where it came from, for messages (``fx node add_3 (operator.add)``,
    ``ONNX node /layer1/layer1.0/Add (Add)``). ``shape``, where the source states it, is the
    output shape per sample (channels first) the source computes: :func:`check_shapes`
    compares it with cnncalc's.
    """

    path: str
    kind: str
    config: dict[str, Any]
    inputs: list[str]
    output: str
    origin: str = ""
    # the output shape per sample as the frontend saw it (traced, or read from the file), or None:
    # the written spec is analysed and each layer's shape held to it (cnncalc.importer.load)
    shape: tuple[int, ...] | None = None


@dataclass
class ImportedModel:
    """A model as importers see it, before it is written as a spec.

    ``input_shape`` is per sample (C×H×W, no batch). ``module_types`` maps a module's dotted
    path to its class (``{"layer1.0": "Bottleneck"}``): the writer folds modules of one type and
    one structure into a block. ``outputs`` are tensor names (the last layer's by default).
    """

    source: str
    input_shape: tuple[int, ...]
    layers: list[ImportedLayer]
    outputs: list[str] = field(default_factory=list)
    module_types: dict[str, str] = field(default_factory=dict)
    name: str = "imported"
    title: str = ""
    notes: list[str] = field(default_factory=list)


def check_shapes(model: ImportedModel, analysis: Any) -> None:
    """Raise a ``SpecError`` naming the first layer whose output shape, as cnncalc computes it
    from the written spec, is not the one the source model states (``ImportedLayer.shape``):
    a wrong translation is an error, never a silent miscount. ``analysis`` is the spec's at the
    model's own input."""
    from ..errors import Location, SpecError

    leaves = [row for row in analysis.rows if row.leaf]
    if len(leaves) != len(model.layers):
        raise SpecError(f"cannot import: the written spec has {len(leaves)} layers for "
                        f"{len(model.layers)} imported ones", Location(model.source))
    for row, layer in zip(leaves, model.layers):
        if layer.shape is not None and tuple(row.output) != tuple(layer.shape):
            ours = "×".join(map(str, row.output))
            theirs = "×".join(map(str, layer.shape))
            raise SpecError(f"cannot import: {layer.origin or layer.path} makes {theirs} per "
                            f"sample, but its cnncalc layer {row.path} ({layer.kind}) makes "
                            f"{ours}; the translation is wrong (please report it)",
                            Location(model.source))


def unique_name(name: str, taken: set[str], start: int = 2) -> str:
    """``name``, or ``name_N`` with the first free N from ``start``, added to ``taken``."""
    if name in taken:
        n = start
        while f"{name}_{n}" in taken:
            n += 1
        name = f"{name}_{n}"
    taken.add(name)
    return name
