"""The Panel dashboard: pick a region, change its weather, see forecasts and embeddings on maps.

In a notebook::

    from kgvsf_explore.app import Explorer
    Explorer().servable()          # the shipped sample cube and weights

From a shell: ``kgvsf serve [--cube PATH] [--weights DIR] [--port N]``.

:class:`Explorer` is the ``param`` class (state and work, tested without a browser);
:class:`RegionSession` is the cached region context behind its fast re-forecasts and works on
its own in a notebook; :func:`serve` starts a server with one explorer per browser session.
Imports are lazy: ``import kgvsf_explore.app`` does not load Panel.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Explorer": "kgvsf_explore.app.explorer",
    "Forecasts": "kgvsf_explore.app.explorer",
    "RegionSession": "kgvsf_explore.app.session",
    "SessionCache": "kgvsf_explore.app.session",
    "WeatherControls": "kgvsf_explore.app.controls",
    "region_truth": "kgvsf_explore.app.truth",
    "serve": "kgvsf_explore.app.serve",
}

__all__ = ["Explorer", "Forecasts", "RegionSession", "SessionCache", "WeatherControls",
           "region_truth", "serve"]

if TYPE_CHECKING:  # pragma: no cover
    from .controls import WeatherControls
    from .explorer import Explorer, Forecasts
    from .serve import serve
    from .session import RegionSession, SessionCache
    from .truth import region_truth


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kgvsf_explore.app' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
