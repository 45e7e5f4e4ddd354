"""The release: one version, checked everywhere it is named; the dists the release workflow builds;
the workflows themselves (actionlint, as scripts/check runs it).

What only GitHub can run (pushing the image, the release itself) is in .github/workflows/release.yml;
here its steps are checked for what they promise, and the parts that run on any machine (the
release check, `python -m build`, the wheel in a clean venv) are run.
"""

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

from reconciler import __version__

REPO = Path(__file__).resolve().parent.parent
RELEASE = REPO / ".github" / "workflows" / "release.yml"
TAG = f"v{__version__}"
# what scripts/release_check.py reads
CHECKED = [
    "reconciler/__init__.py",
    "CHANGELOG.md",
    "README.md",
    ".pre-commit-hooks.yaml",
    "examples/ci/github-actions.yaml",
    "deploy/kubernetes/base/kustomization.yaml",
    "deploy/kubernetes/components/podmonitor/podmonitor.yaml",
]


def release_check(*args, root=None):
    command = [sys.executable, str(REPO / "scripts" / "release_check.py"), *args]
    if root:
        command += ["--root", str(root)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def copy_of_the_checked_files(tmp_path):
    for name in CHECKED:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, tmp_path / name)
    return tmp_path


# -- one version ------------------------------------------------------------------------------


def test_this_checkout_is_ready_to_be_released_as_its_version(tmp_path):
    notes = tmp_path / "notes.md"
    done = release_check(TAG, "--notes", str(notes))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"release_check: {TAG} is ready to be released\n"
    # the release notes are the CHANGELOG's section of this version, without its heading
    text = notes.read_text()
    assert text.startswith("The first release.") and "### Added" in text and "## [" not in text


def test_a_tag_that_is_not_the_version_is_refused():
    done = release_check("v9.9.9")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == f"release_check: the tag v9.9.9 is not {TAG} (reconciler/__init__.py __version__)\n"


def test_a_version_bump_that_forgets_a_pin_names_each_file_it_forgot(tmp_path):
    root = copy_of_the_checked_files(tmp_path)
    init = root / "reconciler" / "__init__.py"
    init.write_text(init.read_text().replace(f'"{__version__}"', '"0.2.0"'))
    changelog = root / "CHANGELOG.md"
    changelog.write_text(
        changelog.read_text().replace("## [Unreleased]\n", "## [0.2.0] - 2027-01-15\n\n- More.\n")
    )
    done = release_check("v0.2.0", root=root)
    assert done.returncode == 1
    named = sorted({line.split(": ")[1] for line in done.stderr.splitlines()})
    assert named == [
        ".pre-commit-hooks.yaml",
        "README.md",
        "deploy/kubernetes/base/kustomization.yaml",
        "deploy/kubernetes/components/podmonitor/podmonitor.yaml",
        "examples/ci/github-actions.yaml",
    ]
    # each pin bumped: ready
    for name in CHECKED[2:]:
        path = root / name
        text = path.read_text().replace(TAG, "v0.2.0")
        path.write_text(re.sub(rf'"{re.escape(__version__)}"', '"0.2.0"', text))
    done = release_check("v0.2.0", root=root)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("heading", "problem"),
    [
        (None, f"no section `## [{__version__}] - YYYY-MM-DD`"),
        (f"## [{__version__}] - soon", f"the section of {__version__} is dated 'soon', not YYYY-MM-DD"),
        (f"## [{__version__}]", f"the section of {__version__} is dated '', not YYYY-MM-DD"),
    ],
)
def test_a_release_without_a_dated_changelog_section_is_refused(tmp_path, heading, problem):
    root = copy_of_the_checked_files(tmp_path)
    changelog = root / "CHANGELOG.md"
    text = changelog.read_text()
    (current,) = re.findall(rf"^## \[{re.escape(__version__)}\].*$", text, re.M)
    changelog.write_text(text.replace(current, heading or "## Earlier"))
    done = release_check(TAG, root=root)
    assert done.returncode == 1 and done.stderr == f"release_check: CHANGELOG.md: {problem}\n"


def test_the_version_has_one_source():
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject
    assert '[tool.hatch.version]\npath = "reconciler/__init__.py"' in pyproject
    assert not re.search(r"^version\s*=", pyproject, re.M)


# -- the release workflow ---------------------------------------------------------------------


def release_workflow():
    return yaml.safe_load(RELEASE.read_text())


def steps_of(job):
    return release_workflow()["jobs"][job]["steps"]


def runs(job):
    return "\n".join(step.get("run", "") for step in steps_of(job))


def uses(job, action):
    (step,) = [s for s in steps_of(job) if s.get("uses", "").startswith(action + "@")]
    return step


def test_the_release_runs_on_a_version_tag_after_the_projects_own_checks():
    workflow = release_workflow()
    assert workflow[True] == {"push": {"tags": ["v*"]}}  # YAML 1.1 reads the key `on` as true
    assert workflow["permissions"] == {"contents": "read"}  # each job asks for what it needs
    assert "bash .ci/run" in runs("test")
    assert workflow["jobs"]["image"]["needs"] == ["test", "dists"]
    assert workflow["jobs"]["release"]["needs"] == ["dists", "image"]


def test_the_release_checks_the_tag_builds_the_dists_and_checks_the_installed_version():
    text = runs("dists")
    assert 'python scripts/release_check.py "$GITHUB_REF_NAME" --notes release-notes.md' in text
    assert "python -m build --outdir dist" in text
    assert "python -m venv /tmp/clean" in text and "/tmp/clean/bin/pip install --quiet dist/*.whl" in text
    assert (
        'test "$(/tmp/clean/bin/syft-reconciler --version)" = "syft-reconciler, version ${GITHUB_REF_NAME#v}"'
        in text
    )
    assert uses("dists", "actions/upload-artifact")["with"]["if-no-files-found"] == "error"


def test_the_release_image_is_multi_arch_with_sbom_and_provenance_tagged_by_version_and_digest():
    build = uses("image", "docker/build-push-action")["with"]
    assert build["file"] == "deploy/Dockerfile" and (REPO / build["file"]).is_file()
    assert build["platforms"] == "linux/amd64,linux/arm64" and build["push"] is True
    assert build["sbom"] is True and build["provenance"] == "mode=max"
    meta = uses("image", "docker/metadata-action")["with"]
    assert meta["tags"].split() == [
        "type=semver,pattern={{version}}",
        "type=semver,pattern={{major}}.{{minor}}",
    ]
    assert build["tags"] == "${{ steps.meta.outputs.tags }}"
    assert "docker/setup-qemu-action@v4" in RELEASE.read_text()  # arm64 is built under emulation
    assert release_workflow()["jobs"]["image"]["permissions"]["packages"] == "write"
    # the pushed image, by digest, runs on each platform and reports the tag's version
    text = runs("image")
    assert '"$IMAGE" --version' in text and "for platform in linux/amd64 linux/arm64" in text
    assert "${{ steps.build.outputs.digest }}" in str(steps_of("image"))
    # the release notes carry the digest users pin
    release = runs("release")
    assert "$IMAGE@$DIGEST" in release and "gh release create" in release and "dist/*" in release
    assert "ghcr.io/${GITHUB_REPOSITORY,,}" in runs("image")
    owner_repo = "OpenMined/syft-space-reconciler".lower()
    assert (
        f"ghcr.io/{owner_repo}"
        in (REPO / "deploy" / "kubernetes" / "base" / "kustomization.yaml").read_text()
    )


# -- actionlint, as scripts/check runs it -----------------------------------------------------

WORKFLOWS = sorted(
    [*(REPO / ".github" / "workflows").glob("*.yml"), *(REPO / "examples" / "ci").glob("*.yaml")]
)


def actionlint(*paths):
    binary = shutil.which("actionlint")
    if binary is None:
        pytest.skip("actionlint is not installed (pip install -e '.[check]')")
    return subprocess.run([binary, "-oneline", *map(str, paths)], capture_output=True, text=True, timeout=60)


def test_scripts_check_runs_actionlint_over_every_workflow():
    check = (REPO / "scripts" / "check").read_text()
    assert "\nactionlint .github/workflows/*.yml examples/ci/*.yaml\n" in check
    assert [p.relative_to(REPO).as_posix() for p in WORKFLOWS] == [
        ".github/workflows/release.yml",
        "examples/ci/github-actions.yaml",
        "examples/ci/image.yaml",
    ]
    done = actionlint(*WORKFLOWS)
    assert done.returncode == 0, done.stdout


def test_actionlint_refuses_an_action_on_the_retired_node20_runtime(tmp_path):
    """The check above can fail: the recipe as it was (actions/checkout@v4, node20) is refused."""
    stale = (
        (REPO / "examples" / "ci" / "github-actions.yaml").read_text().replace("checkout@v6", "checkout@v4")
    )
    (tmp_path / "stale.yaml").write_text(stale)
    done = actionlint(tmp_path / "stale.yaml")
    assert done.returncode == 1
    assert 'runtime "node20" is deprecated' in done.stdout and "actions/checkout@v4" in done.stdout


# -- the dists, built as the release builds them ----------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(300)  # python -m build (sdist, then the wheel from it) and a venv with the wheel
def test_the_sdist_and_wheel_build_and_the_wheel_installs_cleanly_with_the_tags_version(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing of this checkout leaks in
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(tmp_path / "dist"), str(REPO)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (sdist,) = (tmp_path / "dist").glob("*.tar.gz")
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    assert sdist.name == f"syft_space_reconciler-{__version__}.tar.gz"
    assert wheel.name == f"syft_space_reconciler-{__version__}-py3-none-any.whl"
    with tarfile.open(sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    assert {"CHANGELOG.md", "README.md", "pyproject.toml", "reconciler/__init__.py"} <= names
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert "reconciler/__init__.py" in names and any(n.startswith("reconciler/_schemas/") for n in names)
    assert not any(n.startswith(("tests/", "deploy/")) for n in names)

    venv = tmp_path / "clean"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120, env=env)
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    version = subprocess.run(
        [str(venv / "bin" / "syft-reconciler"), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
        check=True,
    ).stdout
    # the release workflow's own comparison, for this checkout's tag
    assert version == f"syft-reconciler, version {TAG.removeprefix('v')}\n"
