"""The built-in demo sweep, made once in the user cache."""

from fetal_iqa_gui.case import demo, synthetic
from fetal_iqa_gui.case.acouslic import IMAGES_DIR


def test_the_folders_the_demo_makes_are_the_users_alone(tmp_path, monkeypatch):
    """Made first (the app's first start), the demo's folder and the cache folder above it, where the score
    cache and the converted models go, are 0700 as the README says of every folder the app makes."""
    cache = tmp_path / "cache"
    monkeypatch.setattr(demo, "demo_folder", lambda: cache / "fetal-iqa" / "demo")

    def write_dataset(folder, cases, seed):  # the real one takes seconds and 130 MB
        (folder / IMAGES_DIR).mkdir(parents=True)
        (folder / IMAGES_DIR / "demo.mha").write_bytes(b"")
    monkeypatch.setattr(synthetic, "write_dataset", write_dataset)
    assert demo.demo_case_path().name == "demo.mha"
    for made in (cache, cache / "fetal-iqa", cache / "fetal-iqa" / "demo"):
        assert made.stat().st_mode & 0o777 == 0o700, made
