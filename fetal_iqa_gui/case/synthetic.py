"""Synthetic ACOUSLIC-AI-shaped cases, for the demo, the tests, the benchmarks and training smoke runs.

Each case is a stack of blind sweeps inside the real probe's fan: speckle, depth attenuation,
maternal tissue, amniotic fluid, and in some sweeps a fetal abdomen whose cross-section enters,
crosses and leaves the imaging plane. Frames where the full cross-section is in plane are
annotated (optimal near the centre of the run, suboptimal at its oblique ends); the abdomen's
ellipse is known, so its true circumference goes into the circumferences CSV.
Written in the challenge's layout:

    OUT/images/stacked_fetal_ultrasound/<uuid>.mha
    OUT/masks/stacked_fetal_abdomen/<uuid>.mha
    OUT/circumferences/fetal_abdominal_circumferences_per_sweep.csv
"""

from __future__ import annotations

import math
import uuid as uuid_lib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import SimpleITK as sitk

from ..base.fileio import atomic_write, write_image
from ..base.text import csv_bytes
from .measure import ramanujan_circumference
from .acouslic import (CIRCUMFERENCES_CSV, DEFAULT_SPACING_MM, FRAMES_PER_SWEEP, IMAGES_DIR, LABEL_OPTIMAL, LABEL_SUBOPTIMAL, MASKS_DIR, SWEEPS, load_fov_mask)

_APEX = (372.0, -183.0)  # the fan's apex (x, y) in pixels, above the image
_SPECKLE_FIELDS = 8
_RENDER_SCALE = 2  # anatomy is drawn at half resolution (smooth shapes); speckle at full resolution


@dataclass
class AbdomenPass:
    """The abdomen crossing the plane in one sweep: visible over `centre +- half_visible` frames."""

    centre: int
    half_visible: float
    half_annotated: int
    position: tuple[float, float]  # ellipse centre (x, y) at the run's centre
    drift: tuple[float, float]  # pixels per frame
    semi_axes: tuple[float, float]
    angle: float  # radians

    def ac_mm(self, spacing: float = DEFAULT_SPACING_MM) -> float:
        return ramanujan_circumference(*self.semi_axes) * spacing


@dataclass
class SyntheticCase:
    frames: np.ndarray  # (n, 562, 744) uint8
    masks: np.ndarray  # same shape, 0/1/2
    sweep_length: int  # frames per slot
    sweeps: int
    abdomen: dict[int, AbdomenPass] = field(default_factory=dict)  # by 1-based sweep number
    uuid: str = ""
    subject_id: str = ""

    def ac_per_sweep(self) -> list[float | None]:
        return [round(self.abdomen[s].ac_mm(), 2) if s in self.abdomen else None for s in range(1, self.sweeps + 1)]


def make_case(seed: int, frames_per_sweep: int = FRAMES_PER_SWEEP, sweeps: int = SWEEPS) -> SyntheticCase:
    """One case, deterministic by seed."""
    rng = np.random.default_rng(seed)
    fov = load_fov_mask()
    height, width = fov.shape
    grid = _Grid(height, width, _RENDER_SCALE)
    full_grid = _Grid(height, width)
    speckle = _speckle_bank(rng, fov * _depth_gain(full_grid, rng))
    frames = np.zeros((frames_per_sweep * sweeps, height, width), np.uint8)
    masks = np.zeros_like(frames)
    with_abdomen = set(rng.choice(np.arange(1, sweeps + 1), size=rng.integers(1, max(2, sweeps - 1)), replace=False))
    case = SyntheticCase(frames, masks, frames_per_sweep, sweeps, uuid=str(uuid_lib.UUID(int=int(rng.integers(2**63)) << 64 | seed)))
    for number in range(1, sweeps + 1):
        start = (number - 1) * frames_per_sweep
        # at least one padding frame closes each slot: that is how a reader tells the sweeps apart
        length = min(int(round(frames_per_sweep * rng.uniform(0.72, 0.9))), frames_per_sweep - 1)
        scene = _Scene.random(rng, grid, length, sagittal=number > sweeps // 2)
        if number in with_abdomen:
            scene.abdomen = _random_abdomen(rng, length, fov)
            case.abdomen[number] = scene.abdomen
        for t in range(length):
            echo = cv2.resize(scene.render(t, grid), (width, height), interpolation=cv2.INTER_LINEAR)
            image = cv2.multiply(echo, speckle[rng.integers(_SPECKLE_FIELDS)])
            # a real frame is never all black inside the fan: that is what tells it from padding
            frames[start + t] = np.maximum(np.clip(image, 0, 255).astype(np.uint8), fov)
            label = scene.label(t)
            if label:
                masks[start + t] = scene.abdomen_mask(t, full_grid, fov) * label
    return case


def write_case(case: SyntheticCase, out_dir: str | Path) -> None:
    """The case's image and mask volumes, compressed as the challenge's are (a full case: 128 MB, not 351)."""
    for folder, volume in ((IMAGES_DIR, case.frames), (MASKS_DIR, case.masks)):
        image = sitk.GetImageFromArray(volume)
        image.SetSpacing((DEFAULT_SPACING_MM, DEFAULT_SPACING_MM, 1.0))
        write_image(image, Path(out_dir) / folder / f"{case.uuid}.mha", overwrite=True)


def write_dataset(out_dir: str | Path, cases: int, seed: int = 0, frames_per_sweep: int = FRAMES_PER_SWEEP,
                  sweeps: int = SWEEPS, progress=None) -> list[SyntheticCase]:
    """Write `cases` cases and their circumferences CSV; returns them without pixels."""
    out_dir = Path(out_dir)
    written = []
    for index in range(cases):
        case = make_case(seed * 100_003 + index, frames_per_sweep, sweeps)
        case.subject_id = f"synthetic-{seed}-{index // 2}"  # two cases per subject, as in the real set
        write_case(case, out_dir)
        case.frames = case.masks = np.empty((0, *case.frames.shape[1:]), np.uint8)  # keep the metadata only
        written.append(case)
        if progress:
            progress(index + 1, cases)
    _write_circumferences(out_dir / CIRCUMFERENCES_CSV, written, sweeps)
    return written


def _write_circumferences(path: Path, cases: list[SyntheticCase], sweeps: int) -> None:
    columns = ["uuid", "subject_id"] + [f"sweep_{i}_ac_mm" for i in range(1, sweeps + 1)]
    rows = [[case.uuid, case.subject_id, *("" if ac is None else ac for ac in case.ac_per_sweep())] for case in cases]
    data = csv_bytes(columns, rows)
    atomic_write(path, lambda file: file.write(data), overwrite=True)


class _Grid:
    """Pixel coordinates and fan geometry shared by every frame of a case."""

    def __init__(self, height: int, width: int, step: int = 1):
        # coordinates in full-resolution pixels of the centres of this grid's (step x step) cells
        rows = np.arange(height // step, dtype=np.float32) * step + (step - 1) / 2
        cols = np.arange(width // step, dtype=np.float32) * step + (step - 1) / 2
        self.y, self.x = np.meshgrid(rows, cols, indexing="ij")
        self.shape = self.y.shape
        self.depth = np.hypot(self.x - _APEX[0], self.y - _APEX[1])  # distance from the apex
        self.depth_norm = (self.depth - self.depth.min()) / (self.depth.max() - self.depth.min())


def _depth_gain(grid: _Grid, rng: np.random.Generator) -> np.ndarray:
    attenuation = rng.uniform(1.2, 2.0)
    return (255.0 * np.exp(-attenuation * grid.depth_norm) * (0.85 + 0.3 * grid.depth_norm)).astype(np.float32)


def _speckle_bank(rng: np.random.Generator, gain: np.ndarray) -> np.ndarray:
    """Rayleigh-distributed speckle with a small grain (mean 1) times the depth gain, a few fields."""
    bank = np.empty((_SPECKLE_FIELDS,) + gain.shape, np.float32)
    for i in range(_SPECKLE_FIELDS):
        real, imag = (cv2.GaussianBlur(rng.standard_normal(gain.shape).astype(np.float32), (0, 0), 1.2)
                      for _ in range(2))
        amplitude = np.hypot(real, imag)
        bank[i] = amplitude * (gain / amplitude.mean())
    return bank


def _random_abdomen(rng: np.random.Generator, length: int, fov: np.ndarray) -> AbdomenPass:
    # annotated runs of 7-21 frames (real ones: median 7), shorter in short test sweeps
    half_annotated = min(int(rng.integers(3, 11)), max(1, (length - 6) // 5))
    # visible beyond the annotated frames on both sides, so every annotated frame shows the abdomen
    half_visible = max(half_annotated * rng.uniform(1.6, 2.2), half_annotated + 1)
    first, last = int(half_visible) + 2, length - int(half_visible) - 2
    centre = int(rng.integers(first, max(last, first + 1)))  # a very short sweep may cut the run off at its end
    a = rng.uniform(95, 150)
    b = a * rng.uniform(0.78, 0.95)
    angle = rng.uniform(-0.6, 0.6)
    for _ in range(100):  # the whole abdomen inside the fan at the run's centre, so its AC is measurable
        position = (rng.uniform(230, 520), rng.uniform(170, 390))
        if _ellipse_inside(fov, position, (a, b), angle):
            break
    drift = tuple(rng.uniform(-1.2, 1.2, size=2))
    return AbdomenPass(centre, half_visible, half_annotated, position, drift, (a, b), angle)


def _ellipse_inside(fov: np.ndarray, centre, axes, angle) -> bool:
    t = np.linspace(0, 2 * np.pi, 90)
    x, y = _ellipse_points(centre, axes, angle, t, margin=6)
    inside = (x >= 0) & (x < fov.shape[1]) & (y >= 0) & (y < fov.shape[0])
    return bool(inside.all() and fov[y.astype(int), x.astype(int)].all())


def _ellipse_points(centre, axes, angle, t, margin=0.0):
    a, b = axes[0] + margin, axes[1] + margin
    x = centre[0] + a * np.cos(t) * math.cos(angle) - b * np.sin(t) * math.sin(angle)
    y = centre[1] + a * np.cos(t) * math.sin(angle) + b * np.sin(t) * math.cos(angle)
    return x, y


def _ellipse_field(grid: _Grid, centre, axes, angle) -> np.ndarray:
    """Normalised radius of every pixel: < 1 inside the ellipse."""
    dx, dy = grid.x - centre[0], grid.y - centre[1]
    cos, sin = math.cos(angle), math.sin(angle)
    u = (dx * cos + dy * sin) / axes[0]
    v = (-dx * sin + dy * cos) / axes[1]
    return np.sqrt(u * u + v * v)


class _Scene:
    """What lies under the probe during one sweep, rendered frame by frame as echo strength."""

    def __init__(self, background: np.ndarray, fluid: tuple, head: tuple | None, limbs: list, length: int):
        self.background = background
        self.fluid = fluid  # (centre, axes, angle, drift)
        self.head = head  # (centre frame, half width, position, radius)
        self.limbs = limbs  # (frame, x0, y0, x1, y1)
        self.length = length
        self.abdomen: AbdomenPass | None = None

    @classmethod
    def random(cls, rng: np.random.Generator, grid: _Grid, length: int, sagittal: bool) -> "_Scene":
        # maternal layers: bright bands near the skin, then soft tissue texture
        layers = 0.35 + 0.1 * np.sin(grid.y / rng.uniform(9, 16) + rng.uniform(0, 6))
        skin = np.exp(-((grid.depth_norm - rng.uniform(0.02, 0.06)) / 0.025) ** 2)
        background = (layers + 0.5 * skin).astype(np.float32)
        fluid = ((rng.uniform(300, 440), rng.uniform(260, 330)), (rng.uniform(220, 290), rng.uniform(150, 200)),
                 rng.uniform(-0.3, 0.3) + (0.4 if sagittal else 0.0), tuple(rng.uniform(-0.6, 0.6, size=2)))
        head = None
        if rng.random() < 0.6:
            head = (int(rng.integers(0, length)), rng.uniform(5, 12),
                    (rng.uniform(260, 480), rng.uniform(200, 380)), rng.uniform(70, 110))
        limbs = [(int(rng.integers(0, length)), *rng.uniform(200, 540, size=2), *rng.uniform(-60, 60, size=2))
                 for _ in range(int(rng.integers(2, 6)))]
        return cls(background, fluid, head, limbs, length)

    def render(self, t: int, grid: _Grid) -> np.ndarray:
        echo = self.background.copy()
        (cx, cy), axes, angle, drift = self.fluid
        fluid = _ellipse_field(grid, (cx + drift[0] * t, cy + drift[1] * t), axes, angle)
        echo *= 0.15 + 0.85 * np.clip((fluid - 0.85) / 0.2, 0.0, 1.0)  # amniotic fluid is dark
        if self.head and abs(t - self.head[0]) < self.head[1]:
            scale = math.sqrt(1 - ((t - self.head[0]) / self.head[1]) ** 2)
            radius = self.head[3] * max(scale, 0.3)
            rho = _ellipse_field(grid, self.head[2], (radius, radius * 0.85), 0.0)
            echo += 0.9 * np.exp(-((rho - 1) / 0.06) ** 2) + 0.25 * (rho < 1)  # skull ring, brain
        for frame, x0, y0, dx, dy in self.limbs:
            if abs(t - frame) < 4:
                s = _RENDER_SCALE
                cv2.line(echo, (int(x0 / s), int(y0 / s)), (int((x0 + dx) / s), int((y0 + dy) / s)), 1.1, 4)
        if self.abdomen is not None:
            self._render_abdomen(self.abdomen, echo, t, grid)
        return echo

    @staticmethod
    def _scale(pass_: AbdomenPass, t: int) -> float:
        offset = (t - pass_.centre) / pass_.half_visible
        return math.sqrt(1 - offset * offset) if abs(offset) < 1 else 0.0

    @staticmethod
    def _centre(pass_: AbdomenPass, t: int) -> tuple[float, float]:
        p, d, dt = pass_.position, pass_.drift, t - pass_.centre
        return (p[0] + d[0] * dt, p[1] + d[1] * dt)

    def _render_abdomen(self, pass_: AbdomenPass, echo: np.ndarray, t: int, grid: _Grid) -> None:
        scale = self._scale(pass_, t)
        if scale <= 0:
            return
        centre = self._centre(pass_, t)
        axes = (pass_.semi_axes[0] * scale, pass_.semi_axes[1] * scale)
        rho = _ellipse_field(grid, centre, axes, pass_.angle)
        inside = rho < 1
        in_plane = abs(t - pass_.centre) <= pass_.half_annotated
        # cut obliquely (entering or leaving the plane) the wall echoes weakly and the body blurs
        wall, body = (0.9, 0.6) if in_plane else (0.25, 0.4)
        echo[inside] = body + 0.1 * echo[inside]
        echo += wall * np.exp(-((rho - 1) / 0.035) ** 2)  # skin and abdominal wall
        if in_plane:
            # the landmarks of a measurable plane: stomach bubble, spine, umbilical vein
            a, b, angle = axes[0], axes[1], pass_.angle
            def at(u, v):
                return (centre[0] + a * u * math.cos(angle) - b * v * math.sin(angle),
                        centre[1] + a * u * math.sin(angle) + b * v * math.cos(angle))
            stomach = _ellipse_field(grid, at(-0.3, -0.2), (a * 0.3, b * 0.22), angle)
            echo[stomach < 1] = 0.04
            spine = _ellipse_field(grid, at(0.0, 0.68), (a * 0.14, b * 0.14), 0.0)
            echo += 1.5 * np.exp(-(spine / 0.9) ** 2)
            vein = _ellipse_field(grid, at(0.25, -0.05), (a * 0.32, b * 0.06), angle + 0.5)
            echo[vein < 1] = 0.08

    def label(self, t: int) -> int:
        if self.abdomen is None:
            return 0
        offset = abs(t - self.abdomen.centre)
        if offset > self.abdomen.half_annotated:
            return 0
        return LABEL_OPTIMAL if offset <= self.abdomen.half_annotated / 3 else LABEL_SUBOPTIMAL

    def abdomen_mask(self, t: int, grid: _Grid, fov: np.ndarray) -> np.ndarray:
        pass_ = self.abdomen
        assert pass_ is not None, "asked only of frames that `label` gives an abdomen"
        scale = self._scale(pass_, t)
        axes = (pass_.semi_axes[0] * scale, pass_.semi_axes[1] * scale)
        return ((_ellipse_field(grid, self._centre(pass_, t), axes, pass_.angle) < 1) & (fov > 0)).astype(np.uint8)
