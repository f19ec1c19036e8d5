"""The optional torch backend: build a spec as a real ``torch.nn.Module``, verify the engine
against it, and time it.

Install with ``pip install 'cnncalc[torch]'`` (torch and fvcore). Nothing here is imported by
``cnncalc table``, ``list`` or ``compare``; torch is imported when one of these functions runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import CnncalcError

if TYPE_CHECKING:  # pragma: no cover
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


__all__ = ["BackendMissing", "INSTALL_HINT", "build", "profile", "require_torch", "verify"]
