"""PV output for a given location from pvlib: clear-sky irradiance on a tilted plane.

An option next to the SimBench PV profiles: it needs no weather data (nothing is downloaded),
so it is the clear-sky upper bound of a site (Ineichen clear sky with Linke turbidity from
pvlib's bundled climatology, Hay-Davies transposition, PVWatts DC model with temperature
derating at 25 °C ambient, 14 % system losses). Values are fractions of installed peak power.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt
import pandas as pd
import pvlib

from gridledger.errors import ValidationError

FloatArray = npt.NDArray[np.float64]
SYSTEM_LOSSES = 0.14
_TEMPERATURE_COEFFICIENT = -0.004  # per kelvin, crystalline silicon


def pvlib_clear_sky_per_unit(
    latitude: float,
    longitude: float,
    start: dt.date,
    n_intervals: int,
    *,
    interval_length_s: int = 900,
    tilt_deg: float = 30.0,
    azimuth_deg: float = 180.0,
) -> FloatArray:
    """Mean clear-sky PV output per interval as a fraction of peak, from ``start`` 00:00 UTC."""
    if not -90.0 <= latitude <= 90.0:
        raise ValidationError("latitude", f"must be within [-90, 90], got {latitude}")
    if not -180.0 <= longitude <= 180.0:
        raise ValidationError("longitude", f"must be within [-180, 180], got {longitude}")
    if n_intervals <= 0:
        raise ValidationError("n_intervals", f"must be positive, got {n_intervals}")
    # sample the middle of each interval: the mean over a quarter hour, to a good approximation
    times = pd.date_range(
        pd.Timestamp(start, tz="UTC") + pd.Timedelta(seconds=interval_length_s / 2),
        periods=n_intervals,
        freq=pd.Timedelta(seconds=interval_length_s),
    )
    site = pvlib.location.Location(latitude, longitude, tz="UTC")
    solar = site.get_solarposition(times)
    sky = site.get_clearsky(times, model="ineichen", solar_position=solar)
    poa = pvlib.irradiance.get_total_irradiance(
        tilt_deg,
        azimuth_deg,
        solar["apparent_zenith"],
        solar["azimuth"],
        sky["dni"],
        sky["ghi"],
        sky["dhi"],
        dni_extra=pvlib.irradiance.get_extra_radiation(times),
        model="haydavies",
    )
    poa_w_per_m2 = poa["poa_global"].fillna(0.0).to_numpy(dtype=np.float64)
    cell_c = pvlib.temperature.faiman(poa_w_per_m2, 25.0, 1.0)
    dc = pvlib.pvsystem.pvwatts_dc(poa_w_per_m2, cell_c, 1.0, _TEMPERATURE_COEFFICIENT)
    per_unit: FloatArray = np.clip(np.asarray(dc, dtype=np.float64) * (1 - SYSTEM_LOSSES), 0, 1)
    return per_unit
