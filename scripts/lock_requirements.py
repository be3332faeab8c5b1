"""Write requirements-lock.txt: the exact versions of what fetal-iqa[test] needs, as installed in
the environment that ran the tests (pip freeze's versions, without the package itself or anything
else that happens to be installed there).

    .venv/bin/python scripts/lock_requirements.py   # after ./run-tests passed in .venv

A requirement reached only under a marker (such as torch's CUDA libraries, Linux x86-64 only)
keeps that marker.
"""

from __future__ import annotations

import platform
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def closure(roots: list[Requirement]) -> dict[str, tuple[str, str | None]]:
    """{name: (version, marker or None)} of every installed distribution the roots need."""
    found: dict[str, tuple[str, str | None]] = {}
    todo = [(requirement, None) for requirement in roots]
    while todo:
        requirement, marker = todo.pop()
        name = canonicalize_name(requirement.name)
        known = found.get(name)
        if known and (known[1] is None or known[1] == marker):
            continue
        try:
            dist = distribution(requirement.name)
        except PackageNotFoundError:
            continue  # not needed here: its marker excluded it on this system
        found[name] = (dist.version, None if known and known[1] != marker else marker)
        extras = requirement.extras or {""}
        for text in dist.requires or []:
            child = Requirement(text)
            if child.marker and not any(child.marker.evaluate({"extra": extra}) for extra in extras):
                continue
            own = str(child.marker) if child.marker and "extra" not in str(child.marker) else None
            todo.append((child, own or marker))
    return found


def main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    roots = [Requirement(text) for text in project["dependencies"] + project["optional-dependencies"]["test"]]
    for requirement in roots:
        if requirement.marker and not requirement.marker.evaluate():
            roots.remove(requirement)
    lines = [f"# The versions the test suite passed with: Python {platform.python_version()} on "
             f"{platform.system()} {platform.machine()}.",
             "# Written by scripts/lock_requirements.py; install with",
             "#   pip install -r requirements-lock.txt && pip install --no-deps .",
             "# Other systems: pip install . (the ranges in pyproject.toml)."]
    for name, (version, marker) in sorted(closure(roots).items()):
        lines.append(f"{name}=={version}" + (f" ; {Marker(marker)}" if marker else ""))
    (ROOT / "requirements-lock.txt").write_text("\n".join(lines) + "\n")
    print(f"wrote {ROOT / 'requirements-lock.txt'} ({len(lines) - 4} packages)", file=sys.stderr)


if __name__ == "__main__":
    main()
