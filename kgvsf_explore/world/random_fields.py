"""Smooth Gaussian random fields: spatial coherence for weather, clouds and soils."""

from __future__ import annotations

import numpy as np


def gaussian_field_2d(
    rng: np.random.Generator, n: int, shape: tuple[int, int], length_px: float
) -> np.ndarray:
    """``n`` independent zero-mean, unit-variance smooth fields of ``shape``.

    White noise is filtered with a Gaussian kernel in the Fourier domain on a grid padded to twice
    the size (so the periodic boundary does not show), then cropped and standardised.

    Parameters
    ----------
    rng
        Random generator (the caller owns the stream, so results are reproducible).
    n
        Number of fields.
    shape
        ``(ny, nx)`` of each field.
    length_px
        Correlation length in pixels (standard deviation of the Gaussian kernel).
    """
    ny, nx = shape
    py, px = 2 * ny, 2 * nx
    noise = rng.standard_normal((n, py, px))
    ky = np.fft.fftfreq(py)[:, None]
    kx = np.fft.rfftfreq(px)[None, :]
    kernel = np.exp(-2.0 * (np.pi * length_px) ** 2 * (ky**2 + kx**2))
    field = np.fft.irfft2(np.fft.rfft2(noise) * kernel, s=(py, px))[:, :ny, :nx]
    field -= field.mean(axis=(1, 2), keepdims=True)
    std = field.std(axis=(1, 2), keepdims=True)
    return field / np.where(std > 0, std, 1.0)


def correlated_normals(
    rng: np.random.Generator, coords: np.ndarray, length: float, n: int
) -> np.ndarray:
    """``n`` draws of a unit-variance Gaussian process at ``coords`` (points x 2, metres).

    Exact draws through the Cholesky factor of a squared-exponential covariance; meant for a
    coarse grid of a few hundred points at most. Returns an array ``(n, points)``.
    """
    d2 = ((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1)
    cov = np.exp(-0.5 * d2 / length**2) + 1e-6 * np.eye(len(coords))
    chol = np.linalg.cholesky(cov)
    return rng.standard_normal((n, len(coords))) @ chol.T
