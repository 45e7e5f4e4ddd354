"""Is this checkout ready to be released as TAG? The release workflow's first step.

    python scripts/release_check.py v0.1.0                         # exit 0, or one line per problem
    python scripts/release_check.py v0.1.0 --notes notes.md        # and write the release notes

The version has one source, `reconciler/__init__.py` (`__version__`; pyproject.toml reads it from
there). Everything that names a release must name this one: the tag, the CHANGELOG (a dated
section, whose text becomes the release notes), the Kubernetes base (its version label and image
tag, and the PodMonitor component's label), the CI recipe's and the pre-commit example's pins,
and README's pins. A version bump that forgets one of them fails here, before anything is built
(and tests/test_release.py runs this on every check, so it fails there first).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
IMAGE = "ghcr.io/openmined/syft-space-reconciler"


def version_of(root: Path) -> str:
    found = re.search(r'^__version__ = "([^"]+)"$', (root / "reconciler" / "__init__.py").read_text(), re.M)
    if not found:
        raise SystemExit('reconciler/__init__.py: no `__version__ = "X.Y.Z"` line')
    return found.group(1)


def changelog_section(root: Path, version: str) -> tuple[str | None, str]:
    """The date and the text of CHANGELOG.md's section for `version` (None: no such section)."""
    text = (root / "CHANGELOG.md").read_text()
    heading = re.search(rf"^## \[{re.escape(version)}\](?: - (\S+))?[ \t]*$", text, re.M)
    if not heading:
        return None, ""
    rest = text[heading.end() :]
    following = re.search(r"^## ", rest, re.M)
    body = rest[: following.start()] if following else rest
    body = re.sub(r"^\[[^\]]+\]: \S+\n?", "", body, flags=re.M)  # link definitions
    return heading.group(1) or "", body.strip() + "\n"


def kustomize_problems(root: Path, version: str) -> list[str]:
    problems = []
    base = root / "deploy" / "kubernetes" / "base" / "kustomization.yaml"
    spec = yaml.safe_load(base.read_text())
    labels = [group["pairs"].get("app.kubernetes.io/version") for group in spec.get("labels", [])]
    if labels != [version]:
        problems.append(
            f"{base.relative_to(root)}: labels app.kubernetes.io/version is {labels}, not {version}"
        )
    images = [(i.get("newName"), i.get("newTag")) for i in spec.get("images", [])]
    if images != [(IMAGE, version)]:
        problems.append(f"{base.relative_to(root)}: images is {images}, not {IMAGE}:{version}")
    monitor = root / "deploy" / "kubernetes" / "components" / "podmonitor" / "podmonitor.yaml"
    label = yaml.safe_load(monitor.read_text())["metadata"]["labels"].get("app.kubernetes.io/version")
    if label != version:
        problems.append(f"{monitor.relative_to(root)}: app.kubernetes.io/version is {label!r}, not {version}")
    return problems


# files that pin a release, and the pins they must carry (each pin at least once, none other)
PINS = {
    "examples/ci/github-actions.yaml": [r"syft-space-reconciler@(v[\w.]+)"],
    ".pre-commit-hooks.yaml": [r"rev: (v[\w.]+)"],
    "README.md": [r"rev: (v[\w.]+)", r"\?ref=(v[\w.]+)", r"syft-space-reconciler@(v[\w.]+)"],
}


def pin_problems(root: Path, tag: str) -> list[str]:
    problems = []
    for name, patterns in PINS.items():
        text = (root / name).read_text()
        for pattern in patterns:
            found = set(re.findall(pattern, text))
            if found != {tag}:
                problems.append(f"{name}: pins {sorted(found) or 'nothing'} ({pattern}), not {tag}")
    return problems


def problems_of(root: Path, tag: str) -> list[str]:
    version = version_of(root)
    problems = []
    if tag != f"v{version}":
        problems.append(f"the tag {tag} is not v{version} (reconciler/__init__.py __version__)")
    date, body = changelog_section(root, version)
    if date is None:
        problems.append(f"CHANGELOG.md: no section `## [{version}] - YYYY-MM-DD`")
    elif not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
        problems.append(f"CHANGELOG.md: the section of {version} is dated {date!r}, not YYYY-MM-DD")
    elif not body.strip():
        problems.append(f"CHANGELOG.md: the section of {version} is empty")
    return problems + kustomize_problems(root, version) + pin_problems(root, f"v{version}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("tag", help="the tag being released, e.g. v0.1.0")
    parser.add_argument("--notes", type=Path, help="write the CHANGELOG section of this version here")
    parser.add_argument("--root", type=Path, default=REPO, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    problems = problems_of(args.root, args.tag)
    for problem in problems:
        print(f"release_check: {problem}", file=sys.stderr)
    if problems:
        return 1
    if args.notes:
        args.notes.write_text(changelog_section(args.root, version_of(args.root))[1])
    print(f"release_check: {args.tag} is ready to be released")
    return 0


if __name__ == "__main__":
    sys.exit(main())
