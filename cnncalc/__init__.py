"""cnncalc: exact shapes, parameters, multiply-adds, receptive fields and memory of CNNs.

The Python API is what the command line calls::

    from cnncalc import load_spec, analyze
    analysis = analyze(load_spec("alexnet"))
    analysis.totals.macs            # 1135256096 multiply-adds (bias adds not counted)
    analysis.at_depth(1)            # rows for the top-level layers and blocks

See docs/api.md.
"""

__version__ = "0.1.0"

from .compare import Comparison, compare
from .engine import MAC_CONVENTION, Analysis, FloorWarning, Row, Totals, analyze
from .errors import CnncalcError, OptionError, SpecError, SpecNotFound
from .spec import Spec, parse_shape, parse_spec
from .zoo import load_spec, zoo_names

__all__ = [
    "Analysis", "CnncalcError", "Comparison", "FloorWarning", "MAC_CONVENTION", "OptionError",
    "Row", "Spec", "SpecError", "SpecNotFound", "Totals", "__version__", "analyze", "compare",
    "load_spec", "parse_shape", "parse_spec", "zoo_names",
]
