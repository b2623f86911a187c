"""The satellites a sample world can be seen by: revisit, bands, noise and cloud screening.

``sentinel2`` is the world as it always was (5-day revisit of Sentinel-2A/B with occasional
acquisitions from an overlapping orbit, every band of :data:`kgvsf_explore.schema.BANDS`).
``landsat`` is Landsat 8 and 9 together: each satellite revisits every 16 days, the pair every
8 days (Landsat Science, USGS); OLI has no red-edge band, so ``B05`` is absent, written all-NaN and
listed in ``attrs["kgvsf_missing_bands"]`` as the band-subset code expects; its surface
reflectance is a little noisier than Sentinel-2's at these scales, and its cloud mask is
buffered by one pixel, as Fmask buffers clouds. Landsat's 30 m pixels stay on the world's 10 m
grid (each 10 m pixel carries its own value), which docs/world.md states.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import KGVSFError
from .params import NOISE_ABS, NOISE_REL


@dataclass(frozen=True)
class Sensor:
    """How one satellite (constellation) observes a world."""

    name: str
    description: str
    revisit_days: int  # days between acquisitions of the constellation
    extra_pass: float  # probability per cycle of an extra acquisition from an overlapping orbit
    missing_bands: tuple[str, ...] = ()
    noise_abs: float = NOISE_ABS
    noise_rel: float = NOISE_REL
    cloud_buffer_px: int = 0


#: The sensors of ``kgvsf make-sample --sensor``.
SENSORS: dict[str, Sensor] = {
    "sentinel2": Sensor(
        "sentinel2", "Sentinel-2A/B MSI: 5-day revisit, seven bands with red edge",
        revisit_days=5, extra_pass=0.15),
    "landsat": Sensor(
        "landsat", "Landsat 8/9 OLI: 16-day revisit each, 8 days together; no red edge (B05)",
        revisit_days=8, extra_pass=0.0, missing_bands=("B05",), noise_abs=0.004,
        noise_rel=0.015, cloud_buffer_px=1),
}

#: The sensor of the shipped sample.
DEFAULT_SENSOR = "sentinel2"


class UnknownSensorError(KGVSFError, ValueError):
    """A sensor name that is not in :data:`SENSORS`."""


def get_sensor(name: str) -> Sensor:
    """The :class:`Sensor` called ``name``.

    Raises
    ------
    UnknownSensorError
        If there is no such sensor; the message lists the known ones.
    """
    try:
        return SENSORS[name]
    except KeyError:
        raise UnknownSensorError(
            f"unknown sensor {name!r}; choose one of {sorted(SENSORS)} (--sensor)") from None
