"""Weather variable names and units: what a file calls things, and how to reach cube units.

Every source quantity is first converted to a canonical unit (the cube's where one exists):

=========  ======================================  =========================================
quantity   accepted units (after normalising)      canonical
=========  ======================================  =========================================
temp       degC, K, degF                           degC (``tmax``, ``tmin``, hourly ``temp``,
                                                   dew point ``tdew``)
prcp       mm, m, cm, in, kg/m2 per step;           mm per step; a rate in mm/day
           mm/s, kg/m2/s (rates)
srad       W/m2 (flux); J/m2, kJ/m2, MJ/m2, Wh/m2   W/m2, or J/m2 per step (a total)
vp         Pa, hPa, kPa                            Pa
rh         %, 1 (fraction)                         %
dayl       s, h, min                               s
swe        kg/m2, mm, m, cm                        kg/m2
et0        mm, in (per day)                        mm/day (reference evapotranspiration)
=========  ======================================  =========================================
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ._errors import IngestError

__all__ = ["ALIASES", "UNITS", "norm_units", "quantity_of", "split_column", "convert"]

#: Source variable name (lower case) -> quantity. Covers Daymet, ERA5(-Land), CF and stations.
ALIASES: dict[str, str] = {
    **dict.fromkeys(("prcp", "precip", "precipitation", "rain", "rainfall", "tp", "pr",
                     "total_precipitation", "ppt"), "prcp"),
    **dict.fromkeys(("tmax", "tasmax", "t_max", "mx2t", "tx", "maximum_temperature"), "tmax"),
    **dict.fromkeys(("tmin", "tasmin", "t_min", "mn2t", "tn", "minimum_temperature"), "tmin"),
    **dict.fromkeys(("t2m", "temp", "temperature", "tas", "tair", "tmean", "tavg",
                     "2m_temperature", "air_temperature"), "temp"),
    **dict.fromkeys(("srad", "ssrd", "rsds", "radiation", "solar_radiation", "sw_in",
                     "surface_solar_radiation_downwards", "shortwave"), "srad"),
    **dict.fromkeys(("vp", "vap", "vapour_pressure", "vapor_pressure", "ea", "e"), "vp"),
    **dict.fromkeys(("d2m", "tdew", "dewpoint", "dew_point", "td", "2m_dewpoint_temperature",
                     "dewpoint_temperature"), "tdew"),
    **dict.fromkeys(("rh", "relative_humidity", "hurs", "humidity", "rhum"), "rh"),
    **dict.fromkeys(("dayl", "daylength", "day_length"), "dayl"),
    **dict.fromkeys(("swe", "sd", "snow_water_equivalent", "snow_depth_water_equivalent"),
                    "swe"),
    **dict.fromkeys(("et0", "eto", "pet", "ref_et", "reference_evapotranspiration"), "et0"),
}

_KIND = {"tmax": "temp", "tmin": "temp", "temp": "temp", "tdew": "temp"}


def _lin(a: float, b: float = 0.0) -> Callable:
    return lambda v: v * a + b


#: Quantity kind -> normalised unit -> (converter to the canonical unit, tag).
#: Tags: ``amount`` (per time step), ``rate`` (per day), ``flux`` (W/m2), ``energy`` (J/m2).
UNITS: dict[str, dict[str, tuple[Callable, str]]] = {
    "temp": {
        **dict.fromkeys(("degc", "c", "°c", "celsius", "deg_c", "degrees_c", "degree_celsius",
                         "degrees_celsius"), (_lin(1.0), "")),
        **dict.fromkeys(("k", "kelvin", "degk", "deg_k"), (_lin(1.0, -273.15), "")),
        **dict.fromkeys(("degf", "f", "°f", "fahrenheit"), (_lin(5 / 9, -32 * 5 / 9), "")),
    },
    "prcp": {
        **dict.fromkeys(("mm", "kg/m2", "mm/day", "mm/d", "kg/m2/day", "mm/h", "mm/hr"),
                        (_lin(1.0), "amount")),
        **dict.fromkeys(("m", "metres", "meters", "m/day", "m/d", "m/h"),
                        (_lin(1000.0), "amount")),
        "cm": (_lin(10.0), "amount"),
        **dict.fromkeys(("in", "inch", "inches"), (_lin(25.4), "amount")),
        **dict.fromkeys(("mm/s", "kg/m2/s"), (_lin(86400.0), "rate")),
    },
    "srad": {
        **dict.fromkeys(("w/m2", "watt/m2"), (_lin(1.0), "flux")),
        **dict.fromkeys(("j/m2", "j/m2/day", "j/m2/d", "j/m2/h"), (_lin(1.0), "energy")),
        **dict.fromkeys(("kj/m2", "kj/m2/day", "kj/m2/d"), (_lin(1e3), "energy")),
        **dict.fromkeys(("mj/m2", "mj/m2/day", "mj/m2/d"), (_lin(1e6), "energy")),
        **dict.fromkeys(("wh/m2",), (_lin(3600.0), "energy")),
    },
    "vp": {
        **dict.fromkeys(("pa", "pascal"), (_lin(1.0), "")),
        **dict.fromkeys(("hpa", "mbar", "mb"), (_lin(100.0), "")),
        "kpa": (_lin(1000.0), ""),
    },
    "rh": {"%": (_lin(1.0), ""), "percent": (_lin(1.0), ""), "1": (_lin(100.0), ""),
           "fraction": (_lin(100.0), "")},
    "dayl": {**dict.fromkeys(("s", "sec", "seconds", "s/day"), (_lin(1.0), "")),
             **dict.fromkeys(("h", "hr", "hours"), (_lin(3600.0), "")),
             **dict.fromkeys(("min", "minutes"), (_lin(60.0), ""))},
    "swe": {**dict.fromkeys(("kg/m2", "mm"), (_lin(1.0), "")),
            **dict.fromkeys(("m", "metres", "meters", "m_of_water_equivalent"),
                            (_lin(1000.0), "")),
            "cm": (_lin(10.0), "")},
    "et0": {**dict.fromkeys(("mm", "mm/day", "mm/d", "kg/m2"), (_lin(1.0), "")),
            **dict.fromkeys(("in", "inch", "inches"), (_lin(25.4), ""))},
}


def norm_units(units: str) -> str:
    """Normalise units: ``'W m-2'`` -> ``'w/m2'``, ``'kg m**-2 s**-1'`` -> ``'kg/m2/s'``."""
    u = str(units).strip().lower().replace("**", "").replace("^", "").replace("per ", "/")
    u = u.replace("m²", "m2").replace(" of water equivalent", "_of_water_equivalent")
    out = ""
    for p in u.split():
        m = re.fullmatch(r"(.+?)-(\d)", p)
        if m:
            out += "/" + m.group(1) + ("" if m.group(2) == "1" else m.group(2))
        else:
            out += ("_" if out else "") + p
    return out


def quantity_of(name: str) -> str | None:
    """Quantity of a source variable name (``'t2m'`` -> ``'temp'``), or None."""
    return ALIASES.get(str(name).strip().lower())


def split_column(column: str) -> tuple[str, str | None]:
    """``'tmax (K)'`` -> ``('tmax', 'K')``; ``'prcp_mm'`` -> ``('prcp', 'mm')``; else no units."""
    m = re.fullmatch(r"\s*(.*?)\s*[\(\[](.+?)[\)\]]\s*", column)
    if m:
        return m.group(1), m.group(2)
    if quantity_of(column):
        return column, None
    if "_" in column:
        head, tail = column.rsplit("_", 1)
        q = quantity_of(head)
        if q and norm_units(tail) in UNITS[_KIND.get(q, q)]:
            return head, tail
    return column, None


def convert(quantity: str, values, units: str | None, *, source: str = ""):
    """Convert ``values`` of ``quantity`` in ``units`` to the canonical unit.

    Returns
    -------
    (values, tag)
        Converted values and the unit's tag (``amount``, ``rate``, ``flux``, ``energy`` or
        ``''``).

    Raises
    ------
    IngestError
        ``units`` is None or not understood for the quantity.
    """
    kind = _KIND.get(quantity, quantity)
    table = UNITS[kind]
    name = source or quantity
    if units is None:
        raise IngestError(
            f"no units for {name!r}; say them in the column name ('{name} (K)'), in the "
            f"variable's 'units' attribute, or with units={{'{name}': '...'}} "
            f"(kgvsf ingest --units {name}=...); accepted: {sorted(set(table))}"
        )
    key = norm_units(units)
    if key not in table:
        raise IngestError(
            f"unknown units {units!r} for {name!r} ({quantity}); accepted: {sorted(set(table))}. "
            f"Convert the column or pass units={{'{name}': '<one of those>'}}"
        )
    fn, tag = table[key]
    return fn(values), tag
