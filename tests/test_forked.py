"""The forked half of a large load gives exactly what a serial load gives (run in a fresh interpreter:
pytest's own process may have server threads, where forking is rightly refused)."""

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from reconciler import forked, loading
    from reconciler.errors import InvalidManifests
    from reconciler.schemas import SchemaRegistry

    root = Path(sys.argv[1])
    registry = SchemaRegistry.load()

    def run(parallel):
        loading.PARALLEL_MIN_FILES = 2 if parallel else 10**9
        assert forked.can_fork()
        try:
            loaded = loading.load([root], registry)
            return {"names": [m.name for m in loaded.manifests], "problems": [str(p) for p in loaded.warnings]}
        except InvalidManifests as exc:
            return {"names": None, "problems": [str(p) for p in exc.problems]}

    print(json.dumps({"serial": run(False), "parallel": run(True)}))
""")

GOOD = "kind: Model\\nname: {name}\\ndtype: ollama\\nconfiguration:\\n  model: m\\n"


def load_both(root):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(root)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_parallel_load_equals_serial(tmp_path):
    for i in range(9):
        (tmp_path / f"m{i}.yaml").write_text(GOOD.format(name=f"model-{i}").replace("\\n", "\n"))
    result = load_both(tmp_path)
    assert result["parallel"] == result["serial"]
    assert result["serial"]["names"] == [f"model-{i}" for i in range(9)]


def test_clash_across_the_halves_and_problems_from_both(tmp_path):
    (tmp_path / "a.yaml").write_text(GOOD.format(name="same").replace("\\n", "\n"))
    (tmp_path / "b.yaml").write_text("kind: Model\nname: [\n")
    (tmp_path / "c.yaml").write_text(GOOD.format(name="other").replace("\\n", "\n"))
    (tmp_path / "d.yaml").write_text(GOOD.format(name="same").replace("\\n", "\n"))
    result = load_both(tmp_path)
    assert result["parallel"] == result["serial"]
    problems = result["serial"]["problems"]
    assert any(
        p.startswith(f"{tmp_path}/d.yaml:2:7: name: `same` is also defined at {tmp_path}/a.yaml")
        for p in problems
    )
    assert any(p.startswith(f"{tmp_path}/b.yaml:") for p in problems)


def test_a_failing_child_gives_none_and_a_good_one_its_value():
    script = textwrap.dedent("""
        from reconciler.forked import Forked
        def boom():
            raise RuntimeError("x")
        print(Forked(lambda: {"a": [1, 2]}).result(), Forked(boom).result())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "{'a': [1, 2]} None", done.stderr
