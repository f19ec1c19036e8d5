"""cnncalc: exact shapes, parameters, multiply-adds, receptive fields and memory of CNNs.

The Python API is what the command line calls::

    from cnncalc import load_spec, analyze
    analysis = analyze(load_spec("alexnet"))
    analysis.totals.macs            # 1135256096 multiply-adds (bias adds not counted)
    analysis.at_depth(1)            # rows for the top-level layers and blocks

See docs/api.md.
"""

__version__ = "0.1.0"

# `compare` is both a submodule and the function exported here: imported now, so that the name
# is the function whichever module imports cnncalc.compare first (the submodule is light).
from .compare import Comparison, compare

# The rest is imported on first use, so that `cnncalc --version` (and any command that does not
# need, say, the engine) does not pay for it.
_LAZY = {
    "MAC_CONVENTION": "engine", "Analysis": "engine", "FloorWarning": "windows", "Row": "engine",
    "Totals": "engine", "analyze": "engine",
    "CnncalcError": "errors", "OptionError": "errors", "SpecError": "errors",
    "SpecNotFound": "errors",
    "Spec": "spec", "parse_shape": "spec", "parse_spec": "spec",
    "load_spec": "zoo", "zoo_names": "zoo",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cnncalc' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Analysis", "CnncalcError", "Comparison", "FloorWarning", "MAC_CONVENTION", "OptionError",
    "Row", "Spec", "SpecError", "SpecNotFound", "Totals", "__version__", "analyze", "compare",
    "load_spec", "parse_shape", "parse_spec", "zoo_names",
]
