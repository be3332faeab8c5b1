"""Synthetic cases: the challenge's layout, the masks and the true circumference, read back."""

import csv
import warnings

import numpy as np
import pytest

from fetal_iqa_gui.case import synthetic
from fetal_iqa_gui.case.measure import measure_abdomen
from fetal_iqa_gui.case.acouslic import load_fov_mask
from fetal_iqa_gui.case.loading import load_case


def test_case_looks_like_an_acouslic_case(small_case):
    frames, masks = small_case.frames, small_case.masks
    assert frames.shape == masks.shape == (180, 562, 744) and frames.dtype == np.uint8
    fov = load_fov_mask()
    image = frames[~(frames.reshape(180, -1).max(1) == 0)][0]
    assert not image[fov == 0].any() and image[fov > 0].all()  # the fan, never black inside
    assert set(np.unique(masks)) <= {0, 1, 2} and (masks == 1).any()
    for slot in range(6):  # padding at the end of every slot
        assert frames[slot * 30 + 29].max() == 0


def test_labels_are_optimal_in_the_centre_of_the_run(small_case):
    sweep, abdomen = next(iter(small_case.abdomen.items()))
    start = (sweep - 1) * small_case.sweep_length
    labels = small_case.masks[start:start + small_case.sweep_length].reshape(small_case.sweep_length, -1).max(1)
    run = np.flatnonzero(labels)
    assert labels[start - start + abdomen.centre] == 1
    assert labels[run[0]] in (1, 2) and np.all(np.diff(run) == 1)


def test_written_dataset_reads_back_with_its_circumferences(small_dataset):
    rows = list(csv.DictReader(open(small_dataset / synthetic.CIRCUMFERENCES_CSV)))
    assert len(rows) == 4 and list(rows[0])[:3] == ["uuid", "subject_id", "sweep_1_ac_mm"]
    row = next(r for r in rows if any(r[f"sweep_{i}_ac_mm"] for i in range(1, 7)))
    image = load_case(small_dataset / synthetic.IMAGES_DIR / f"{row['uuid']}.mha")
    masks = load_case(small_dataset / synthetic.MASKS_DIR / f"{row['uuid']}.mha", sweeps=6)
    assert image.spacing_mm == pytest.approx((0.28, 0.28)) and image.n_frames == 144
    sweep = next(i for i in range(1, 7) if row[f"sweep_{i}_ac_mm"])
    slot = masks.layout.sweeps[sweep - 1]
    optimal = [f for f in range(slot.start, slot.stop) if (masks.frames[f] == 1).any()]
    centre = optimal[len(optimal) // 2]
    measured = measure_abdomen(masks.frames[centre] > 0, 0.28).ac_mm
    assert measured == pytest.approx(float(row[f"sweep_{sweep}_ac_mm"]), rel=0.03)


def test_same_seed_same_case():
    a = synthetic.make_case(5, frames_per_sweep=12, sweeps=1)
    b = synthetic.make_case(5, frames_per_sweep=12, sweeps=1)
    assert np.array_equal(a.frames, b.frames) and a.uuid == b.uuid


@pytest.mark.slow
def test_the_shortest_sweeps_synth_allows_always_work():
    for seed in range(40):  # some of these seeds drew an abdomen run longer than the sweep
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # e.g. a zero-size abdomen's division by zero
            case = synthetic.make_case(seed, frames_per_sweep=10, sweeps=1)
        assert case.frames.shape[0] == 10
        if 1 in case.abdomen:  # every frame of the annotated run shows (and masks) the abdomen
            run = case.abdomen[1]
            for t in range(max(run.centre - run.half_annotated, 0), min(run.centre + run.half_annotated + 1, 10)):
                assert case.masks[t].any()
