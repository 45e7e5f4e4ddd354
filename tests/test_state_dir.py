"""`.syft-space/`: the tool's state folder (the lock, the sandbox's database) ignores itself."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from reconciler.cli.options import SANDBOX_DB, sandbox_db
from reconciler.errors import BadSetting
from reconciler.lock import GITIGNORE, lock_file, space_lock, state_dir


def test_the_state_folder_is_made_once_with_its_gitignore(tmp_path):
    folder = state_dir(tmp_path)
    assert folder == tmp_path / ".syft-space"
    assert (folder / ".gitignore").read_text() == GITIGNORE
    assert GITIGNORE.splitlines()[-1] == "*"
    (folder / ".gitignore").write_text("*\n!keep\n")  # the user's own edit is kept
    assert state_dir(tmp_path) == folder and (folder / ".gitignore").read_text() == "*\n!keep\n"
    assert [p.name for p in folder.iterdir()] == [".gitignore"]  # no temporary file left behind


def test_the_lock_lives_in_the_state_folder(tmp_path):
    with space_lock(tmp_path, "k", command="apply") as path:
        assert path == lock_file(tmp_path, "k") == tmp_path / ".syft-space" / "syft-reconciler-k.lock"
        assert path.read_text() == f"{os.getpid()} apply\n"
    assert (tmp_path / ".syft-space" / ".gitignore").is_file()


def test_a_home_that_cannot_hold_the_state_folder_locks_in_the_temp_dir(tmp_path):
    missing = tmp_path / "gone"
    with space_lock(missing, "k", command="watch") as path:
        assert path.parent == Path(tempfile.gettempdir()) and not missing.exists()
    (tmp_path / ".syft-space").write_text("a file where the folder would be")
    with space_lock(tmp_path, "k", command="watch") as path:
        assert path.parent == Path(tempfile.gettempdir())


def test_the_sandbox_database_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert sandbox_db() == str(SANDBOX_DB)
    assert (tmp_path / ".syft-space" / ".gitignore").read_text() == GITIGNORE
    other = tmp_path / "elsewhere" / "s.db"
    assert sandbox_db(other) == str(other) and other.parent.is_dir()
    assert not (other.parent / ".gitignore").exists()  # only the state folder ignores itself
    assert sandbox_db(":memory:") == ":memory:"
    (tmp_path / "blocked").write_text("")
    with pytest.raises(BadSetting, match="cannot make the sandbox's folder"):
        sandbox_db(tmp_path / "blocked" / "s.db")
