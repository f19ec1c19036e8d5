"""The optional torch backend: build a spec as a real ``torch.nn.Module``, verify the engine
against it, and time it.

Install with ``pip install 'cnncalc[torch]'`` (torch and fvcore). Nothing here is imported by
``cnncalc table``, ``list`` or ``compare``; torch is imported when one of these functions runs.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

from ..errors import CnncalcError, OptionError

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Analysis
    from ..spec import Spec


class BackendMissing(CnncalcError):
    """torch (or another backend package) is not installed."""


INSTALL_HINT = "the torch backend is not installed: pip install 'cnncalc[torch]'"


def require_torch() -> Any:
    """Import and return torch, or raise :class:`BackendMissing` with the install command."""
    try:
        import torch
    except ImportError:
        raise BackendMissing(INSTALL_HINT) from None
    return torch


def available_memory() -> int | None:
    """Bytes of memory a new allocation can have now: MemAvailable on Linux, else the free
    pages; ``None`` where neither is known."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(analysis: Analysis, what: str = "verify") -> None:
    """Refuse, from the engine's own byte count and before torch allocates anything, a model
    whose fp32 parameters, buffers and every activation of one recorded forward pass (verify
    keeps them all) do not fit in the memory available now."""
    t = analysis.totals  # verify analyses at fp32, as it builds
    need = 4 * (t.params + t.buffers) + t.activation_bytes + t.head_activation_bytes \
        + 4 * analysis.batch * math.prod(analysis.input)
    from ..render import human_bytes, shape_text

    free = available_memory()
    if free is not None and need > free:
        raise OptionError(f"{what}: the model needs about {human_bytes(need)} (parameters, "
                          f"buffers and every activation at input {shape_text(analysis.input)}, "
                          f"batch {analysis.batch}, fp32) and {human_bytes(free)} is available; "
                          "choose a smaller --input or --batch")


def build(spec: Spec, input: Any = None) -> Any:
    """The spec as a ``torch.nn.Module`` whose submodule names are the spec's dotted paths."""
    require_torch()
    from .builders import build as _build

    return _build(spec, input)


def verify(spec: Spec, input: Any = None, batch: int = 1) -> Any:
    """Run the built model once and check every row of the analysis against it."""
    require_torch()
    from .checks import verify as _verify

    return _verify(spec, input, batch)


def profile(spec: Spec, **options: Any) -> Any:
    """Time the built model; see :func:`cnncalc.backend.timing.profile` for the options."""
    require_torch()
    from .timing import profile as _profile

    return _profile(spec, **options)


__all__ = ["BackendMissing", "INSTALL_HINT", "available_memory", "build", "check_fits", "profile",
           "require_torch", "verify"]
