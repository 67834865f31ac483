"""``pip`` for the docs test: checks a documented ``pip install`` instead of running it.

The suite is offline and must be quick, so an install command in the docs is judged, not
executed: a local path (``.``, ``-e ".[cli]"``) must be this checkout, and its extras must
be ones pyproject.toml defines; any other requirement must already be installed here at a
version it allows. ``ltx2`` from a package index is refused: it is not published there.
Exits 1 with the reason, as pip would fail.
"""

from __future__ import annotations

import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

ROOT = Path(__file__).resolve().parents[2]
_FLAGS_WITH_VALUE = {"-r", "--requirement", "-c", "--constraint", "-i", "--index-url"}
_FLAGS = {"-e", "--editable", "-q", "--quiet", "-U", "--upgrade", "--pre", "--user"}


def _extras_of_checkout() -> set[str]:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        project = tomllib.load(fh)["project"]
    return set(project.get("optional-dependencies", {}))


def check(spec: str) -> str | None:
    """Why ``spec`` would not install from here, or None if it would."""
    path, _, extras = spec.partition("[")
    if path.startswith((".", "/")) or path.endswith("/"):
        if path not in (".", "./"):
            return f"{spec}: the docs install from the checkout's root ('.'), not {path!r}"
        wanted = {e.strip() for e in extras.rstrip("]").split(",") if e.strip()}
        unknown = wanted - _extras_of_checkout()
        if unknown:
            return f"{spec}: pyproject.toml defines no extra {', '.join(sorted(unknown))}"
        return None
    try:
        req = Requirement(spec)
    except InvalidRequirement as exc:
        return f"{spec}: not a requirement ({exc})"
    if req.name.lower() == "ltx2":
        return f"{spec}: ltx2 is not on a package index; from a checkout: pip install -e ."
    try:
        version = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        return f"{spec}: not installed in the test environment, so the docs cannot be checked"
    if req.specifier and not req.specifier.contains(version, prereleases=True):
        return f"{spec}: {req.name} {version} is installed, outside {req.specifier}"
    return None


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "install":
        print(f"docs test: only 'pip install' is understood, not {argv!r}", file=sys.stderr)
        return 1
    args = iter(argv[1:])
    problems = []
    for arg in args:
        if arg in _FLAGS_WITH_VALUE:
            problems.append(f"{arg}: the docs test does not follow requirement files or indexes")
            next(args, None)
        elif arg in _FLAGS or arg.startswith("-"):
            continue
        elif (why := check(arg)) is not None:
            problems.append(why)
    for why in problems:
        print(f"pip install: {why}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
