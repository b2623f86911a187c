"""Drivers a station record lacks, estimated from what it has (FAO-56), and srad's time base.

Most long station records hold only ``tmin``, ``tmax`` and ``prcp``. The missing drivers are
estimated by the methods FAO Irrigation and Drainage Paper 56 (Allen et al. 1998) gives for
exactly that case, and each estimate is warned about and recorded in the cube's attrs:

* **srad** from the daily temperature range, Hargreaves' radiation formula (FAO-56 eq. 50)
  ``Rs = kRs sqrt(Tmax - Tmin) Ra``, ``Ra`` the extraterrestrial radiation (eq. 21), ``kRs``
  0.16 for interior and 0.19 for coastal locations, capped at the clear-sky ``Rso = 0.75 Ra``
  (eq. 37); or, when the record has reference evapotranspiration ``et0``, from the Hargreaves
  & Samani (1985) form ``ET0 = 0.0135 (Tmean + 17.8) Rs``, ``Rs`` in mm/day of evaporation
  (``0.408 MJ m-2`` each, FAO-56 eq. 20);
* **vp** from the minimum temperature, the dew point taken as ``tmin`` (FAO-56 eq. 48,
  ``ea = e0(Tmin)``; in arid climates it overestimates, see FAO-56 Annex 6).

And a daily srad flux may be a **24-hour mean** (many loggers and reanalyses) instead of the
cube's daylight mean (Daymet): the two differ by ``dayl / 86400``, about a factor two, and
both look plausible. :func:`srad_time_base` compares the flux with the day's extraterrestrial
radiation: measured daily radiation reaches about 0.75 ``Ra`` on clear days (eq. 37), so the
clear days (the 95th percentile of ``Rs / Ra``) tell which time base makes physical sense.
"""

from __future__ import annotations

import numpy as np

from ..world.solar import extraterrestrial_radiation, saturation_vapour_pressure_pa

__all__ = ["KRS_INTERIOR", "KRS_COASTAL", "hargreaves_srad", "srad_from_et0", "vp_from_tmin",
           "srad_time_base", "extraterrestrial_mj"]

#: Hargreaves' adjustment coefficient kRs (FAO-56 eq. 50) for interior locations.
KRS_INTERIOR = 0.16
#: ... and for coastal locations (on or next to the coast of a large land mass).
KRS_COASTAL = 0.19

#: Clear-sky share of Ra at sea level (FAO-56 eq. 37).
CLEAR_SKY = 0.75

#: MJ m-2 of radiation per mm of evaporation equivalent (FAO-56 eq. 20: 1 MJ = 0.408 mm).
MJ_PER_MM = 1 / 0.408


def extraterrestrial_mj(lat: np.ndarray | float, doy: np.ndarray) -> np.ndarray:
    """Daily extraterrestrial radiation ``Ra`` in MJ m-2 (FAO-56 eq. 21), broadcast."""
    return extraterrestrial_radiation(np.asarray(lat, float), np.asarray(doy, float))


def _flux(total_mj: np.ndarray, dayl_s: np.ndarray) -> np.ndarray:
    """A daily total in MJ m-2 as the daylight-mean flux in W m-2 (0 in polar night)."""
    dayl = np.asarray(dayl_s, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(dayl > 0, total_mj * 1e6 / np.where(dayl > 0, dayl, 1.0), 0.0)


def hargreaves_srad(tmax: np.ndarray, tmin: np.ndarray, ra_mj: np.ndarray, dayl_s: np.ndarray,
                    krs: float = KRS_INTERIOR) -> np.ndarray:
    """Daylight-mean shortwave flux (W m-2) from the temperature range, FAO-56 eq. 50.

    ``Rs = krs sqrt(tmax - tmin) Ra``, capped at ``0.75 Ra`` (eq. 37), divided by ``dayl``.

    Examples
    --------
    >>> float(hargreaves_srad(30.0, 16.0, 40.0, 14 * 3600.0).round(1))  # 0.16 sqrt(14) 40 MJ
    475.1
    """
    td = np.maximum(np.asarray(tmax, float) - np.asarray(tmin, float), 0.0)
    ra = np.asarray(ra_mj, float)
    rs = np.minimum(krs * np.sqrt(td) * ra, CLEAR_SKY * ra)
    return _flux(rs, dayl_s)


def srad_from_et0(et0_mm: np.ndarray, tmax: np.ndarray, tmin: np.ndarray, ra_mj: np.ndarray,
                  dayl_s: np.ndarray) -> np.ndarray:
    """Daylight-mean flux (W m-2) from reference ET0 by Hargreaves & Samani (1985).

    ``Rs = ET0 / (0.0135 (Tmean + 17.8))`` mm/day, x ``1/0.408`` MJ m-2, kept within
    ``0..0.75 Ra``.
    """
    tmean = (np.asarray(tmax, float) + np.asarray(tmin, float)) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        rs_mm = np.asarray(et0_mm, float) / (0.0135 * np.maximum(tmean + 17.8, 1.0))
    ra = np.asarray(ra_mj, float)
    rs = np.clip(rs_mm * MJ_PER_MM, 0.0, CLEAR_SKY * ra)
    return _flux(rs, dayl_s)


def vp_from_tmin(tmin: np.ndarray) -> np.ndarray:
    """Vapour pressure (Pa) with the dew point at the minimum temperature, FAO-56 eq. 48."""
    return saturation_vapour_pressure_pa(tmin)


def srad_time_base(srad_wm2: np.ndarray, dayl_s: np.ndarray, ra_mj: np.ndarray,
                   min_days: int = 60) -> tuple[str | None, dict[str, float]]:
    """Whether a daily flux is the daylight mean or the 24-hour mean.

    Returns
    -------
    (base, ratios)
        ``base`` is ``'daylight'``, ``'24h'`` or None (fewer than ``min_days`` days with
        sunlight, or neither fits); ``ratios`` the 95th percentile of ``Rs / Ra`` under each
        reading (``p95_daylight``, ``p95_24h``). Read as the daylight mean, a 24-hour mean
        gives clear days at about ``0.75 dayl / 86400`` (0.3-0.55) instead of 0.75; read as
        a 24-hour mean, a daylight mean gives clear days well above ``Ra``.
    """
    s = np.asarray(srad_wm2, float)
    d = np.broadcast_to(np.asarray(dayl_s, float), s.shape)
    ra = np.broadcast_to(np.asarray(ra_mj, float), s.shape)
    ok = np.isfinite(s) & (ra > 3.0) & (d > 3600)
    if ok.sum() < min_days:
        return None, {}
    as_day = np.percentile(s[ok] * d[ok] / 1e6 / ra[ok], 95)
    as_24 = np.percentile(s[ok] * 86400 / 1e6 / ra[ok], 95)
    ratios = {"p95_daylight": float(as_day), "p95_24h": float(as_24)}
    if 0.5 <= as_day <= 1.1:
        return "daylight", ratios
    if as_day < 0.5 and 0.5 <= as_24 <= 1.1:
        return "24h", ratios
    return None, ratios
