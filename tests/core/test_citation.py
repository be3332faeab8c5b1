"""CITATION.cff names the version that is installed, and cites the paper whose model the app runs."""

from pathlib import Path

import pytest

import fetal_iqa_gui

yaml = pytest.importorskip("yaml")
CITATION = Path(__file__).parents[2] / "CITATION.cff"


def test_the_citation_names_this_version_and_the_paper():
    citation = yaml.safe_load(CITATION.read_text())
    assert citation["cff-version"] == "1.2.0" and citation["type"] == "software"
    assert str(citation["version"]) == fetal_iqa_gui.__version__
    assert citation["license"] == "MIT"
    paper, fetalclip = citation["references"]
    assert "2507.22802" in paper["url"] and [a["family-names"] for a in paper["authors"]] == ["He", "Wang", "Yaqub"]
    assert fetalclip["title"].startswith("FetalCLIP")
