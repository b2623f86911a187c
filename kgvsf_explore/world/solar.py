"""Astronomy of the sample world: day length and extraterrestrial radiation (FAO-56)."""

from __future__ import annotations

import numpy as np


def _declination_and_sunset(lat_deg: float, doy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    phi = np.deg2rad(lat_deg)
    decl = 0.409 * np.sin(2 * np.pi * doy / 365.0 - 1.39)  # FAO-56 eq. 24
    omega_s = np.arccos(np.clip(-np.tan(phi) * np.tan(decl), -1.0, 1.0))  # eq. 25
    return decl, omega_s


def day_length_s(lat_deg: float, doy: np.ndarray) -> np.ndarray:
    """Day length in seconds, FAO-56 eq. 34 (N = 24 omega_s / pi hours)."""
    _, omega_s = _declination_and_sunset(lat_deg, np.asarray(doy, dtype=float))
    return 24.0 / np.pi * omega_s * 3600.0


def extraterrestrial_radiation(lat_deg: float, doy: np.ndarray) -> np.ndarray:
    """Daily extraterrestrial radiation Ra in MJ m-2 day-1, FAO-56 eq. 21."""
    doy = np.asarray(doy, dtype=float)
    phi = np.deg2rad(lat_deg)
    decl, omega_s = _declination_and_sunset(lat_deg, doy)
    dr = 1 + 0.033 * np.cos(2 * np.pi * doy / 365.0)  # eq. 23
    gsc = 0.0820  # MJ m-2 min-1
    return (24 * 60 / np.pi) * gsc * dr * (
        omega_s * np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.sin(omega_s)
    )


def saturation_vapour_pressure_pa(t_degc: np.ndarray) -> np.ndarray:
    """Saturation vapour pressure in Pa over water, FAO-56 eq. 11."""
    t = np.asarray(t_degc, dtype=float)
    return 610.8 * np.exp(17.27 * t / (t + 237.3))
