"""Embedded stereo depth set: two simulated event cameras watching textured objects move at known depth.

Scene (rectified stereo pair, pinhole, focal length ``F_PX`` pixels, baseline ``BASELINE_M``):
a fronto-parallel textured background at depth ``Z_BG`` that pans slowly, and ``N_OBJECTS`` textured
discs of physical radius R_i whose centre (cx, cy) and depth Z_i(t) in [1, 3] m follow smooth
sinusoids. Apparent radius = f R_i / Z_i; a point at depth Z seen at left column x appears in the right
image at x - d with disparity d = f B / Z. Each view is composed far-to-near (painter's algorithm);
the ground-truth depth is the left view's nearest surface, dense (no invalid pixels).
Intensities are rendered every ``DT_US`` and turned into events by
:func:`spikes.datasets.sensor.simulate_dvs` (one sensor per camera, thresholds with mismatch).

Written once as an hdf5 file in MVSEC's layout (``davis/{left,right}/events`` (N, 4) float64
[x, y, t_s, p in {-1, +1}], ``davis/left/depth_image_rect`` (K, H, W) float32 metres,
``davis/left/depth_image_rect_ts`` (K,) seconds), plus attrs ``spikes_split_{train,val,test}`` = frame
ranges [start, stop): the first 70 % train, next 15 % val, last 15 % test. h5py is imported only when the
file is written.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter

from .cache import atomic_write, cache_dir as _cache_dir
from .sensor import DVSParameters, simulate_dvs

WIDTH, HEIGHT = 96, 64
F_PX, BASELINE_M = 80.0, 0.1
Z_BG = 6.0
N_OBJECTS = 3
N_FRAMES = 200
FRAME_US = 50_000
DT_US = 4000
_VERSION = 1
_CHUNK = 25


def _texture(rng: np.random.Generator, size: int, sigma: float) -> torch.Tensor:
    tex = gaussian_filter(rng.standard_normal((size, size)), sigma, mode="wrap")
    tex = 0.5 + 0.35 * np.tanh(2.0 * tex / tex.std())  # high contrast, in (0.15, 0.85)
    return torch.from_numpy(tex.astype(np.float32))[None, None]


class _Scene:
    def __init__(self, rng: np.random.Generator):
        self.bg = _texture(rng, 256, 3.0)
        self.obj_tex = [_texture(rng, 64, 2.0) for _ in range(N_OBJECTS)]
        self.radius_m = rng.uniform(0.18, 0.3, N_OBJECTS)
        self.phase = rng.uniform(0, 2 * np.pi, (N_OBJECTS, 3))
        self.freq = rng.uniform(0.08, 0.2, (N_OBJECTS, 3))  # Hz, for cx, cy, Z
        xs = torch.arange(WIDTH, dtype=torch.float32)
        ys = torch.arange(HEIGHT, dtype=torch.float32)
        self.gy, self.gx = torch.meshgrid(ys, xs, indexing="ij")

    def objects(self, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Centre (cx, cy) in left-image pixels and depth Z (m), each (T, N_OBJECTS)."""
        a = 2 * np.pi * self.freq[None] * t_s[:, None, None] + self.phase[None]
        cx = WIDTH * (0.5 + 0.38 * np.sin(a[..., 0]))
        cy = HEIGHT * (0.5 + 0.35 * np.sin(a[..., 1]))
        z = 2.0 + 1.0 * np.sin(a[..., 2])
        return cx, cy, z

    def render(self, t_s: np.ndarray, view: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Intensity and depth (T, H, W) for view 0 = left, 1 = right."""
        T = len(t_s)
        gx, gy = self.gx[None], self.gy[None]
        pan_x = torch.from_numpy((40.0 * np.sin(2 * np.pi * 0.05 * t_s) + 6.0 * t_s).astype(np.float32))[:, None, None]
        pan_y = torch.from_numpy((10.0 * np.sin(2 * np.pi * 0.07 * t_s)).astype(np.float32))[:, None, None]
        d_bg = F_PX * BASELINE_M / Z_BG * view
        u = (gx + d_bg + pan_x) / 256 * 2 - 1  # background texture coordinates (wrapping)
        v = (gy + pan_y) / 256 * 2 - 1
        u = torch.remainder(u + 1, 2) - 1
        v = torch.remainder(v + 1, 2) - 1
        img = F.grid_sample(self.bg.expand(T, -1, -1, -1), torch.stack([u, v], -1), align_corners=False,
                            padding_mode="reflection")[:, 0]
        depth = torch.full((T, HEIGHT, WIDTH), Z_BG)
        cx, cy, z = self.objects(t_s)
        for i in np.argsort(-z.mean(0)):  # far to near on average; per-pixel depth test below
            zi = torch.from_numpy(z[:, i].astype(np.float32))[:, None, None]
            cxi = torch.from_numpy(cx[:, i].astype(np.float32))[:, None, None] - view * F_PX * BASELINE_M / zi
            cyi = torch.from_numpy(cy[:, i].astype(np.float32))[:, None, None]
            r_px = F_PX * float(self.radius_m[i]) / zi
            dx, dy = (gx - cxi) / r_px, (gy - cyi) / r_px
            alpha = torch.clamp((1 - torch.sqrt(dx * dx + dy * dy)) * r_px + 0.5, 0, 1)
            alpha = alpha * (zi < depth)  # depth test: hidden behind a nearer disc
            tex = F.grid_sample(self.obj_tex[i].expand(T, -1, -1, -1), torch.stack([dx, dy], -1),
                                align_corners=False, padding_mode="border")[:, 0]
            img = img * (1 - alpha) + tex * alpha
            depth = torch.where(alpha > 0.5, zi.expand_as(depth), depth)
        return img, depth


def generate_stereo_depth(seed: int = 0, n_frames: int = N_FRAMES) -> dict[str, np.ndarray]:
    """Simulate the scene; returns MVSEC-layout arrays (see module docstring)."""
    rng = np.random.default_rng(seed)
    scene = _Scene(rng)
    duration_us = n_frames * FRAME_US
    n_steps = duration_us // DT_US + 1
    params = DVSParameters(threshold=0.35, threshold_sigma=0.04, dt_us=DT_US, noise_hz=0.1)
    out: dict[str, np.ndarray] = {}
    for view, name in ((0, "left"), (1, "right")):
        cache: dict[int, torch.Tensor] = {}

        def render(k: int) -> torch.Tensor:
            c = k // _CHUNK
            if c not in cache:
                cache.clear()
                ks = np.arange(c * _CHUNK, (c + 1) * _CHUNK)
                cache[c] = scene.render(ks * DT_US * 1e-6, view)[0]
            return cache[c][k % _CHUNK][None]

        _, x, y, t, p = simulate_dvs(render, n_steps, (1, HEIGHT, WIDTH), params, rng, desc=f"stereo {name} events")
        out[f"davis/{name}/events"] = np.stack([x, y, t * 1e-6, np.where(p > 0, 1.0, -1.0)], 1).astype(np.float64)
    ts = np.arange(1, n_frames + 1) * FRAME_US * 1e-6
    out["davis/left/depth_image_rect"] = scene.render(ts, 0)[1].numpy().astype(np.float32)
    out["davis/left/depth_image_rect_ts"] = ts
    return out


def split_ranges(n_frames: int) -> dict[str, tuple[int, int]]:
    a, b = int(0.7 * n_frames), int(0.85 * n_frames)
    return {"train": (1, a), "val": (a, b), "test": (b, n_frames)}  # frame 0 has no full 50 ms window


def write_mvsec_layout(path: Path, arrays: dict[str, np.ndarray], attrs: dict | None = None) -> Path:
    """Write arrays (hdf5 dataset name -> array) atomically as an hdf5 file."""
    import h5py

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            for key, arr in arrays.items():
                f.create_dataset(key, data=arr, chunks=True if arr.ndim else None, compression="lzf", shuffle=True)
            for k, v in (attrs or {}).items():
                f.attrs[k] = v

    return atomic_write(path, write)


def stereo_depth_file(seed: int = 0, cache_dir: str | Path | None = None) -> Path:
    """Path of the cached MVSEC-layout stereo file for ``seed``, generating it on first use."""
    path = _cache_dir(cache_dir) / f"stereo_depth_v{_VERSION}_seed{seed}.hdf5"
    if not path.exists():
        arrays = generate_stereo_depth(seed)
        attrs = {f"spikes_split_{k}": np.array(v) for k, v in split_ranges(N_FRAMES).items()}
        attrs.update(focal_px=F_PX, baseline_m=BASELINE_M, seed=seed)
        write_mvsec_layout(path, arrays, attrs)
    return path
