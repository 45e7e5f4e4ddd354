from pathlib import Path

import pytest

from reconciler.manifests import MAX_NODES_PER_DOCUMENT, decode, find_files, parse, read_paths


def test_positions_are_recorded_per_field():
    docs, problems = parse("kind: Model\nname: a\nconfiguration:\n  model: x\n", "f.yaml")
    assert problems == []
    doc = docs[0]
    assert doc.positions[("name",)] == (2, 7)
    assert doc.positions[("configuration", "model")] == (4, 10)
    assert doc.key_positions[("configuration", "model")] == (4, 3)


def test_several_documents_and_empty_ones():
    docs, problems = parse("a: 1\n---\n---\nb: 2\n", "f.yaml")
    assert [d.value for d in docs] == [{"a": 1}, {"b": 2}]
    assert docs[1].positions[("b",)] == (4, 4)
    assert problems == []


def test_duplicate_key_is_an_error_naming_both_lines():
    _, problems = parse("a: 1\nb:\n  c: 1\n  c: 2\n", "f.yaml")
    assert [str(p) for p in problems] == [
        "f.yaml:4:3: b.c: duplicate key (first at line 3); YAML would keep only the last"
    ]


def test_custom_tags_are_refused():
    _, problems = parse("a: !!python/object/apply:os.system ['true']\n", "f.yaml")
    assert len(problems) == 1
    assert "unsupported YAML tag" in problems[0].message
    assert (problems[0].line, problems[0].field) == (1, "a")


def test_alias_bomb_is_bounded():
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        levels.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    _, problems = parse("\n".join(levels) + "\n", "bomb.yaml")
    assert len(problems) == 1
    assert f"more than {MAX_NODES_PER_DOCUMENT} values" in problems[0].message
    assert (problems[0].line, problems[0].column) == (1, 1)


def test_syntax_error_with_tab_hint():
    _, problems = parse("a:\n\tb: 1\n", "t.yaml")
    assert problems[0].line == 2
    assert problems[0].message.endswith("indent with spaces, not tabs")


def test_decode_bom_and_bad_bytes():
    assert decode("\ufeffa: 1".encode(), "f") == ("a: 1", None)
    text, problem = decode(b"a: 1\nb: \xff\n", "f.yaml")
    assert text is None
    assert (problem.line, problem.column) == (2, 4)
    assert "not UTF-8" in problem.message


def test_find_files_recurses_sorted_and_filters(tmp_path: Path):
    (tmp_path / "b").mkdir()
    for name in ["z.yaml", "b/a.yml", "b/readme.md", ".hidden.yaml"]:
        (tmp_path / name).write_text("a: 1\n")
    files, problems = find_files([tmp_path])
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["b/a.yml", "z.yaml"]
    assert problems == []


def test_symlink_outside_the_folder_is_refused(tmp_path: Path):
    outside = tmp_path / "outside.yaml"
    outside.write_text("a: 1\n")
    root = tmp_path / "manifests"
    root.mkdir()
    (root / "link.yaml").symlink_to(outside)
    (root / "loop").symlink_to(root, target_is_directory=True)
    files, problems = find_files([root])
    assert files == []
    assert len(problems) == 1 and "leads outside" in problems[0].message


def test_missing_path_is_a_problem(tmp_path: Path):
    docs, problems = read_paths([tmp_path / "nope"])
    assert docs == [] and problems[0].message == "no such file or directory"


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n"])
def test_empty_files_have_no_documents(text):
    assert parse(text, "e.yaml") == ([], [])
