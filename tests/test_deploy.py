"""deploy/: what can be checked without Docker or a cluster.

- The kustomize base lists exactly the files beside it, and every resource validates offline,
  strictly (unknown fields are errors), against the Kubernetes JSON schemas that the pinned
  `kubernetes-validate` ships: 1.29 (the oldest with native sidecars) and the newest it has.
  The example overlay is rendered with a small strategic merge (lists of named items merge by
  name, as kustomize does for containers and env) and validated too.
- The manifests agree with the daemon: probe paths it serves, the metrics port it listens on,
  the token file it reads, the checkout path git-sync publishes, the security settings.
- The image without Docker: the Dockerfile's own COPY lines and `pip wheel` / `pip install`
  commands, run into a fresh venv; then its command line (ENTRYPOINT + CMD, and ENTRYPOINT + the
  StatefulSet's args) runs from that venv as a process against the sandbox, with the container's
  paths mapped into a temp dir, and serves /livez and /readyz.
"""

import copy
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import kubernetes_validate
import pytest
import yaml
from kustomize_render import by_identity, kubectl_render, load_all, render

from reconciler import __version__

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
BASE = DEPLOY / "kubernetes" / "base"
OVERLAY = DEPLOY / "kubernetes" / "overlays" / "example"
SPACES_OVERLAY = DEPLOY / "kubernetes" / "overlays" / "spaces"
K8S_VERSIONS = ("1.29", kubernetes_validate.utils.latest_version())
DEADLINE_S = 20
URL = "https://github.com/OpenMined/syft-space-reconciler"
IMAGE = "ghcr.io/openmined/syft-space-reconciler"


def kustomization(folder):
    (doc,) = load_all(folder / "kustomization.yaml")
    return doc


def base_resources():
    return [(name, doc) for name in kustomization(BASE)["resources"] for doc in load_all(BASE / name)]


def by_kind(kind, docs=None):
    (doc,) = [doc for doc in (docs or render(BASE)) if doc["kind"] == kind]
    return doc


def container(pod, name):
    (found,) = [c for c in pod["containers"] + pod.get("initContainers", []) if c["name"] == name]
    return found


def options(args):
    """--name=value arguments as a dict, and the positional ones as a list."""
    named = dict(a[2:].split("=", 1) for a in args if a.startswith("--"))
    return named, [a for a in args if not a.startswith("-")]


def readme_block(heading, language, index=0):
    """The `index`-th ```language block of README's section `heading`."""
    text = (REPO / "README.md").read_text()
    section = text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, re.S)[index]


def remote_example(tmp_path):
    """README's remote-base kustomization, with this checkout's folders standing in for the URLs
    (kustomize fetches `…//PATH?ref=TAG` as PATH of the repository at TAG) and a digest for the
    placeholder; beside it, the example overlay's patch, as README says."""
    text = readme_block("## Running on Kubernetes", "yaml")
    refs = set(re.findall(r"\?ref=(\S+)", text))
    assert refs == {f"v{__version__}"}  # pinned to this release
    local = os.path.relpath(REPO, tmp_path)
    text = re.sub(rf"{re.escape(URL)}//(\S+)\?ref=\S+", rf"{local}/\1", text)
    text = text.replace("sha256:…", "sha256:" + "0f" * 32)
    (tmp_path / "kustomization.yaml").write_text(text)
    shutil.copy(OVERLAY / "statefulset-patch.yaml", tmp_path)
    return tmp_path


def trees(tmp_path):
    return {
        "base": BASE,
        "example": OVERLAY,
        "spaces": SPACES_OVERLAY,
        "remote": remote_example(tmp_path),
    }


TREES = ["base", "example", "spaces", "remote"]
KUBECTL = shutil.which("kubectl")


# -- the kustomize tree, rendered, and the schemas --------------------------------------------


def test_the_base_lists_exactly_the_resource_files_beside_it():
    listed = kustomization(BASE)["resources"]
    present = sorted(p.name for p in BASE.glob("*.y*ml") if p.name != "kustomization.yaml")
    assert sorted(listed) == present and len(set(listed)) == len(listed)
    kinds = sorted(doc["kind"] for _, doc in base_resources())
    assert kinds == ["Namespace", "NetworkPolicy", "Service", "ServiceAccount", "StatefulSet"]


@pytest.mark.skipif(not KUBECTL, reason="kubectl is not installed: the imitation alone renders")
@pytest.mark.parametrize("tree", TREES)
def test_the_imitation_renders_what_kubectl_kustomize_renders(tree, tmp_path):
    """`kubectl kustomize` (kustomize v5, offline) and tests/kustomize_render.py agree object for
    object, so the tests below, which use the imitation, hold for the real tool."""
    folder = trees(tmp_path)[tree]
    assert by_identity(render(folder)) == by_identity(kubectl_render(folder))


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("tree", TREES)
def test_every_rendered_object_validates_strictly_against_the_kubernetes_schemas(
    tree, version, tmp_path, monkeypatch
):
    def no_network(*args, **kwargs):
        raise AssertionError("the validator tried to reach the network")

    docs = render(trees(tmp_path)[tree])
    monkeypatch.setattr(socket.socket, "connect", no_network)
    kinds = []
    for doc in docs:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD: kubernetes-validate has no schema for it (its shape is tested below)
        assert kubernetes_validate.validate(doc, version, strict=True), doc["kind"]
        kinds.append(doc["kind"])
    assert sorted(kinds) == ["Namespace", "NetworkPolicy", "Service", "ServiceAccount", "StatefulSet"]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("spec", "template", "spec", "containers", 0, "livenessProb"), {}, "Additional properties"),
        (
            ("spec", "template", "spec", "containers", 0, "ports", 0, "containerPort"),
            "9464",
            "is not of type",
        ),
        (("spec", "template", "spec", "initContainers", 0, "restartPolicy"), 7, "is not of type"),
    ],
)
def test_the_validator_catches_a_broken_statefulset(path, value, message):
    """The check above can fail: the same validator refuses a typo'd field and wrong types."""
    doc = copy.deepcopy(by_kind("StatefulSet"))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(kubernetes_validate.ValidationError, match=message):
        kubernetes_validate.validate(doc, K8S_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("tree", TREES)
def test_every_object_carries_the_release_in_its_labels_and_the_daemon_runs_the_releases_image(
    tree, tmp_path
):
    """A version bump that forgets deploy/ fails here: labels and the image are reconciler.__version__
    (or, in the remote example, the digest pin of that release's image)."""
    docs = render(trees(tmp_path)[tree])
    recommended = {
        "app.kubernetes.io/version": __version__,
        "app.kubernetes.io/part-of": "syft-space-reconciler",
        "app.kubernetes.io/component": "watch",
        "app.kubernetes.io/managed-by": "kustomize",
    }
    for doc in docs:
        labels = doc["metadata"]["labels"]
        assert labels.items() >= recommended.items(), doc["kind"]
        if doc["kind"] != "Namespace":
            assert labels["app.kubernetes.io/name"] == "syft-reconciler", doc["kind"]
    sts = by_kind("StatefulSet", docs)
    assert sts["spec"]["template"]["metadata"]["labels"].items() >= recommended.items()
    # selectors stay the name alone: immutable, so an upgrade must never change them
    assert sts["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "syft-reconciler"}
    assert by_kind("Service", docs)["spec"]["selector"] == {"app.kubernetes.io/name": "syft-reconciler"}
    image = container(sts["spec"]["template"]["spec"], "reconciler")["image"]
    if tree == "remote":
        assert image == f"{IMAGE}@sha256:" + "0f" * 32
    else:
        assert image == f"{IMAGE}:{__version__}"


@pytest.mark.parametrize("tree", TREES)
def test_everything_lives_in_the_namespace_the_tree_creates(tree, tmp_path):
    docs = render(trees(tmp_path)[tree])
    namespace = by_kind("Namespace", docs)
    name = namespace["metadata"]["name"]
    assert name == "syft-space" and kustomization(BASE)["namespace"] == name
    assert all(d["metadata"]["namespace"] == name for d in docs if d["kind"] != "Namespace")
    # README applies namespace.yaml alone first, then creates the Secrets in it
    assert load_all(BASE / "namespace.yaml")[0]["metadata"]["name"] == name
    # the pod meets the `restricted` Pod Security Standard that the namespace enforces
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_an_overlays_namespace_renames_the_namespace_object_too(tmp_path):
    local = os.path.relpath(BASE, tmp_path)
    (tmp_path / "kustomization.yaml").write_text(f"resources: [{local}]\nnamespace: reconcilers\n")
    docs = render(tmp_path)
    if KUBECTL:
        assert by_identity(docs) == by_identity(kubectl_render(tmp_path))
    assert by_kind("Namespace", docs)["metadata"]["name"] == "reconcilers"
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {"reconcilers"}


# -- the NetworkPolicy and the PodMonitor -----------------------------------------------------


def test_the_network_policy_lets_out_dns_and_https_only_and_in_the_metrics_port_only():
    docs = render(BASE)
    policy = by_kind("NetworkPolicy", docs)["spec"]
    sts = by_kind("StatefulSet", docs)
    pod = sts["spec"]["template"]["spec"]
    assert policy["podSelector"] == sts["spec"]["selector"]  # exactly the daemon's pods
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]  # both: deny by default
    # in: one rule, one port, the daemon's metrics (and probe) port, by its name
    (rule,) = policy["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": "metrics"}]
    daemon = container(pod, "reconciler")
    assert [p["name"] for p in daemon["ports"]] == ["metrics"]
    assert daemon["ports"][0]["containerPort"] == int(options(daemon["args"])[0]["metrics-port"])
    # out: every rule names its ports (a rule without ports would let everything out)
    allowed = sorted((p["protocol"], p["port"]) for r in policy["egress"] for p in r["ports"])
    assert allowed == [("TCP", 53), ("TCP", 443), ("UDP", 53)]
    assert all(r["ports"] for r in policy["egress"])


@pytest.mark.parametrize("tree", ["base", "example"])
def test_the_servers_and_the_git_host_the_pod_calls_are_https_on_443(tree, tmp_path):
    """The egress rule and the configuration agree: the server and the repository are https URLs on
    the default port, the one the policy opens."""
    pod = by_kind("StatefulSet", render(trees(tmp_path)[tree]))["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for c in ("git-sync", "reconciler") for e in container(pod, c)["env"]}
    for url in (env["SYFT_SPACE_URL"], env["GITSYNC_REPO"]):
        parsed = urlsplit(url)
        assert parsed.scheme == "https" and parsed.port in (None, 443), url


def test_the_pod_monitor_scrapes_the_daemons_metrics_port_and_is_left_out_by_default(tmp_path):
    docs = render(remote_example(tmp_path))
    monitor = by_kind("PodMonitor", docs)
    sts = by_kind("StatefulSet", docs)
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == sts["metadata"]["namespace"]
    assert monitor["spec"]["selector"] == sts["spec"]["selector"]
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    daemon = container(sts["spec"]["template"]["spec"], "reconciler")
    assert endpoint["port"] in [p["name"] for p in daemon["ports"]] and endpoint["path"] == "/metrics"
    # optional: neither the base nor the overlays carry it (it fails where its CRD is missing)
    for folder in (BASE, OVERLAY, SPACES_OVERLAY):
        assert "PodMonitor" not in [d["kind"] for d in render(folder)]
    component = kustomization(DEPLOY / "kubernetes" / "components" / "podmonitor")
    assert component["kind"] == "Component"


# -- README's cluster steps -------------------------------------------------------------------


def test_readmes_cluster_commands_name_the_folders_namespace_and_secrets_the_manifests_use():
    lines = [
        line.split("#")[0].strip()
        for line in readme_block("## Running on Kubernetes", "sh").splitlines()
        if line.strip()
    ]
    docs = render(OVERLAY)
    namespace = by_kind("Namespace", docs)["metadata"]["name"]
    pod = by_kind("StatefulSet", docs)["spec"]["template"]["spec"]
    (first, *rest) = lines
    assert first == "kubectl apply -f deploy/kubernetes/base/namespace.yaml"
    assert all(f"-n {namespace} " in line for line in rest if line.startswith("kubectl -n"))
    secrets = {}
    for line in rest:
        words = shlex.split(line)
        if words[3:6] == ["create", "secret", "generic"]:
            secrets[words[6]] = [w.split("=")[1] for w in words if w.startswith("--from")]
        folder = words[-1]
        if words[1:3] in (["apply", "-k"], ["kustomize", folder]):
            assert (REPO / folder / "kustomization.yaml").is_file(), line
            assert Path(folder) == OVERLAY.relative_to(REPO), line
    (token_volume,) = [v for v in pod["volumes"] if v["name"] == "token"]
    daemon = container(pod, "reconciler")
    (keys,) = [e["secretRef"]["name"] for e in daemon["envFrom"]]
    assert set(secrets) == {token_volume["secret"]["secretName"], keys}
    token_file = options(daemon["args"])[0]["token-file"]
    assert secrets[token_volume["secret"]["secretName"]] == [Path(token_file).name]
    assert (
        lines[-1]
        == f"kubectl -n {namespace} rollout status statefulset/{by_kind('StatefulSet', docs)['metadata']['name']}"
    )


# -- the manifests agree with the daemon ----------------------------------------------------


def test_probes_port_annotations_and_service_match_the_daemons_arguments():
    sts = by_kind("StatefulSet")
    template = sts["spec"]["template"]
    pod = template["spec"]
    daemon = container(pod, "reconciler")
    named, positional = options(daemon["args"])
    port = int(named["metrics-port"])
    assert named["metrics-host"] == "0.0.0.0" and named["log-format"] == "json"
    (metrics,) = daemon["ports"]
    assert (metrics["name"], metrics["containerPort"]) == ("metrics", port)
    assert daemon["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "metrics"}
    assert daemon["startupProbe"]["httpGet"] == {"path": "/livez", "port": "metrics"}
    assert daemon["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert template["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port),
        "prometheus.io/path": "/metrics",
    }
    service = by_kind("Service")
    assert service["spec"]["clusterIP"] == "None"
    assert sts["spec"]["serviceName"] == service["metadata"]["name"]
    labels = template["metadata"]["labels"]
    assert service["spec"]["selector"] == sts["spec"]["selector"]["matchLabels"]
    assert labels.items() >= service["spec"]["selector"].items()  # the selectors select the pods
    assert service["spec"]["ports"] == [{"name": "metrics", "port": port, "targetPort": "metrics"}]
    assert pod["serviceAccountName"] == by_kind("ServiceAccount")["metadata"]["name"]

    # the manifests folder is inside the checkout git-sync publishes, and the token is the Secret's file
    sync = container(pod, "git-sync")
    sync_named, _ = options(sync["args"])
    (folder,) = positional
    assert folder.startswith(f"{sync_named['root']}/{sync_named['link']}/")
    mounts = {m["name"]: m for m in daemon["volumeMounts"]}
    assert mounts["git"]["mountPath"] == sync_named["root"] and mounts["git"]["readOnly"] is True
    (token_volume,) = [v for v in pod["volumes"] if v["name"] == "token"]
    assert "items" not in token_volume["secret"]  # every key a file: `token`, or one per space
    assert named["token-file"] == f"{mounts['token']['mountPath']}/token"


def test_git_sync_is_a_pinned_native_sidecar_that_gates_the_daemon():
    pod = by_kind("StatefulSet")["spec"]["template"]["spec"]
    sync = container(pod, "git-sync")
    image, tag = sync["image"].rsplit(":", 1)
    assert image == "registry.k8s.io/git-sync/git-sync" and re.fullmatch(r"v\d+\.\d+\.\d+", tag)
    assert sync["restartPolicy"] == "Always" and sync in pod["initContainers"]
    assert sync["startupProbe"]["httpGet"]["port"] == "git-sync"
    assert f":{sync['ports'][0]['containerPort']}" == options(sync["args"])[0]["http-bind"]


def test_every_container_runs_locked_down():
    pod = by_kind("StatefulSet")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for c in pod["containers"] + pod["initContainers"]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc["capabilities"] == {"drop": ["ALL"]}, c["name"]
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"], c["name"]
    # the image's fixed non-root user is the pod's
    user = pod["securityContext"]
    assert f"USER {user['runAsUser']}:{user['runAsGroup']}" in dockerfile()


# -- the image's command line, run as a process ----------------------------------------------


def dockerfile():
    return (DEPLOY / "Dockerfile").read_text()


def instruction(name):
    """The last exec-form (JSON) `name` instruction of the runtime stage."""
    lines = re.sub(r"\\\n", " ", dockerfile()).splitlines()
    (value,) = [line.split(None, 1)[1] for line in lines if line.startswith(f"{name} ")][-1:]
    return json.loads(value)


def stages():
    """Each stage's instructions as (keyword, rest) pairs, continuation lines joined."""
    out: list[list[tuple[str, str]]] = []
    for line in re.sub(r"\\\n", " ", dockerfile()).splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        keyword, rest = line.split(None, 1)
        if keyword == "FROM":
            out.append([])
        if out:
            out[-1].append((keyword, rest))
    return out


def run_lines(stage):
    """The shell commands of a stage's RUN instructions (BuildKit --mount flags dropped)."""
    commands = []
    for keyword, rest in stage:
        if keyword == "RUN":
            commands += [c.strip() for c in re.sub(r"^(--mount=\S+\s+)+", "", rest).split("&&")]
    return commands


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory):
    """The image, built without Docker: the builder stage's COPY lines into a clean folder and its
    `pip wheel` there, then the runtime stage's `pip install` into a fresh venv. Returns its bin/."""
    builder, runtime = stages()
    root = tmp_path_factory.mktemp("image")
    src, wheels = root / "src", root / "wheels"
    src.mkdir()
    (workdir,) = [rest for keyword, rest in builder if keyword == "WORKDIR"]
    for keyword, rest in builder:
        if keyword == "COPY":
            *sources, dest = rest.split()
            for source in sources:
                target = (
                    src
                    / dest
                    / (Path(source).name if dest.endswith("/") and not source.endswith("/") else "")
                )
                if (REPO / source).is_dir():
                    shutil.copytree(REPO / source, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(REPO / source, target)
    (build,) = [c for c in run_lines(builder) if c.startswith("pip wheel")]
    pip = [sys.executable, "-m", "pip"]
    done = subprocess.run(
        pip + shlex.split(build.replace("/wheels", str(wheels)))[1:],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert workdir == "/src" and not (src / "tests").exists()
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pips = [c for c in run_lines(runtime) if c.startswith("pip ")]
    assert [c.split()[1] for c in pips] == ["install", "uninstall"]
    for command in pips:  # in order: the install, then pip's own removal
        done = subprocess.run(
            [str(venv / "bin" / "python"), "-m", *shlex.split(command.replace("/wheels", str(wheels)))],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    return venv / "bin"


def test_the_dockerfile_is_multi_stage_and_installs_only_the_wheel():
    text = dockerfile()
    stages = re.findall(r"^FROM (\S+)(?: AS (\w+))?", text, re.M)
    assert [s[1] for s in stages] == ["builder", ""]
    assert "pip wheel --wheel-dir /wheels ." in text
    runtime = text.split("\nFROM ")[-1]
    assert "pip install --no-index --find-links /wheels syft-space-reconciler \\\n" in runtime
    assert "syft-space-reconciler[" not in text  # no extra: not the sandbox's server stack, no tools
    assert "&& pip uninstall --yes pip" in runtime  # nothing installs anything at run time
    assert not re.search(r"^(COPY|ADD) ", runtime, re.M)  # nothing but the wheelhouse reaches it
    assert not re.search(r"^HEALTHCHECK", text, re.M)  # Kubernetes probes instead
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    assert ignored[1] == "**"  # everything is left out but what the builder copies
    assert {"!reconciler/", "!schemas/", "!pyproject.toml", "!README.md"} <= set(ignored)


SERVER_STACK_BLOCKER = """
import importlib.abc
import sys

SERVER_STACK = {"fastapi", "starlette", "uvicorn", "httptools", "uvloop"}


class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in SERVER_STACK:
            raise ImportError(f"{name}: not in the image (the [sandbox] extra)")
        return None


sys.meta_path.insert(0, Refuse())
"""


def test_the_server_stack_blocker_blocks(tmp_path):
    """The check in the daemon test below can fail: with the blocker, FastAPI cannot be imported."""
    (tmp_path / "sitecustomize.py").write_text(SERVER_STACK_BLOCKER)
    code = "import click, httpx; import fastapi"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "fastapi: not in the image" in done.stderr


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mapped(args, paths, port):
    """The container's arguments with its paths under a temp dir, and the port on loopback."""
    out = []
    for arg in args:
        for inside, outside in paths.items():
            arg = arg.replace(inside, str(outside))
        arg = {"--metrics-host=0.0.0.0": "--metrics-host=127.0.0.1"}.get(arg, arg)
        out.append(re.sub(r"^--metrics-port=\d+$", f"--metrics-port={port}", arg))
    return out


@pytest.mark.slow
@pytest.mark.timeout(180)  # its fixture builds the wheels and a venv, as the image's Dockerfile does
def test_the_image_has_the_package_from_its_wheel_only(image_venv):
    code = "import reconciler; print(reconciler.__file__)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the image's, not this checkout
    where = subprocess.run(
        [str(image_venv / "python"), "-c", code], cwd="/", capture_output=True, text=True, check=True, env=env
    ).stdout.strip()
    assert Path(where).is_relative_to(image_venv.parent) and "site-packages" in where
    no_pip = subprocess.run(
        [str(image_venv / "python"), "-c", "import pip"], capture_output=True, check=False, env=env
    )
    assert no_pip.returncode == 1 and b"No module named 'pip'" in no_pip.stderr
    schemas = Path(where).parent / "_schemas"
    bundled = sorted(p.name for p in (REPO / "schemas").glob("*.json"))
    assert bundled and sorted(p.name for p in schemas.glob("*.json")) == bundled


@pytest.mark.slow
@pytest.mark.parametrize("args_from", ["Dockerfile CMD", "StatefulSet args"])
def test_the_images_command_line_runs_the_daemon_against_the_sandbox(
    args_from, tmp_path, sandbox_factory, image_venv
):
    token = "tok-deploy-canary-5e1f"
    sandbox = sandbox_factory(token=token)
    entrypoint = instruction("ENTRYPOINT")
    assert (image_venv / entrypoint[0]).is_file() and entrypoint[1:] == ["watch"]
    checkout = tmp_path / "git" / "repo" / "manifests"
    checkout.mkdir(parents=True)
    (checkout / "a.yaml").write_text("kind: Model\nname: a\ndtype: ollama\nconfiguration:\n  model: llama3\n")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "token").write_text(token + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYFT_SPACE_")}
    if args_from == "Dockerfile CMD":
        args = instruction("CMD")
        paths = {"/manifests": checkout}
        env |= {"SYFT_SPACE_URL": sandbox.url, "SYFT_SPACE_TOKEN": token}  # as `docker run -e` would
    else:
        daemon = container(by_kind("StatefulSet")["spec"]["template"]["spec"], "reconciler")
        args = daemon["args"]
        paths = {"/git": tmp_path / "git", "/var/run/secrets/syft-space": secrets}
        env |= {e["name"]: e["value"] for e in daemon["env"]} | {"SYFT_SPACE_URL": sandbox.url}
    # the daemon needs no server stack: the sandbox's FastAPI and uvicorn (the `[sandbox]` extra,
    # which the image does not install) cannot be imported by it
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(SERVER_STACK_BLOCKER)
    env["PYTHONPATH"] = str(blocker)
    port = free_port()
    # the console script the wheel installed in the image's venv (what the image's PATH finds)
    command = [str(image_venv / entrypoint[0]), *entrypoint[1:], *mapped(args, paths, port)]
    inside = tuple(paths)  # no path of the container's is left unmapped
    assert not [a for a in command[2:] if a.split("=")[-1].startswith(inside)], shlex.join(command)
    proc = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + DEADLINE_S
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                if httpx.get(url + "/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "not ready in time"
            time.sleep(0.05)
        assert httpx.get(url + "/livez").json()["alive"] is True
        auth = {"Authorization": f"Bearer {token}"}
        models = httpx.get(sandbox.url + "/api/v1/models/", headers=auth).json()
        assert [m["name"] for m in models] == ["a"]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=DEADLINE_S)
        assert proc.returncode == 0, err
        lines = [json.loads(line) for line in err.splitlines()]  # --log-format=json: every line parses
        assert lines[-1]["event"] == "stop" and token not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_the_image_ci_recipe_builds_this_dockerfile_and_renders_these_folders():
    """examples/ci/image.yaml runs on a runner with Docker, never here; it must at least point at
    the files that exist and say so."""
    text = (REPO / "examples" / "ci" / "image.yaml").read_text()
    workflow = yaml.safe_load(text)
    steps = workflow["jobs"]["image"]["steps"]
    (build,) = [s for s in steps if s.get("uses", "").startswith("docker/build-push-action@")]
    assert build["uses"] == "docker/build-push-action@v7" and build["with"]["load"] is True
    assert build["with"]["file"] == "deploy/Dockerfile" and (REPO / build["with"]["file"]).is_file()
    rendered = re.findall(r"kubectl kustomize (\S+)", text)
    assert rendered == [
        "deploy/kubernetes/base",
        "deploy/kubernetes/overlays/example",
        "deploy/kubernetes/overlays/spaces",
    ]
    assert all((REPO / path / "kustomization.yaml").is_file() for path in rendered)
    assert "NOT RUN on the project's own machines" in text
    # the smoke test runs the image against a server outside it, and reports its size
    smoke = "\n".join(s.get("run", "") for s in steps)
    assert "--sandbox" not in smoke and "sandbox serve" in smoke and "{{.Size}}" in smoke


# -- many spaces: replicas are shards ---------------------------------------------------------


def spaces_statefulset():
    return by_kind("StatefulSet", render(SPACES_OVERLAY))


def test_the_spaces_overlay_runs_replicas_as_shards_and_drops_the_single_servers_url():
    sts = spaces_statefulset()
    pod = sts["spec"]["template"]["spec"]
    daemon = container(pod, "reconciler")
    named, positional = options(daemon["args"])
    assert positional == [] and "token-file" not in named  # each space names its own
    env = {e["name"]: e["value"] for e in daemon["env"]}
    assert int(env["SYFT_RECONCILER_SHARDS"]) == sts["spec"]["replicas"] > 1
    # each space of `spaces:` names its server: no placeholder of the base's single server is left
    assert "SYFT_SPACE_URL" not in env and "SYFT_SPACE_URL" in str(by_kind("StatefulSet"))
    sync_named, _ = options(container(pod, "git-sync")["args"])
    assert named["config"] == f"{sync_named['root']}/{sync_named['link']}/syft-reconciler.yaml"
    assert int(named["spaces-parallelism"]) >= 1
    assert named["metrics-port"] == "9464" and daemon["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert len(pod["containers"]) == 1 and len(pod["initContainers"]) == 1


@pytest.mark.timeout(60)
def test_the_spaces_overlays_command_line_runs_each_replicas_shard(tmp_path, sandbox_factory):
    """The overlay's args and env, run as two replicas would (host names NAME-0 and NAME-2 of
    3 shards) against one multi-tenant sandbox: each converges exactly its shard's tenants."""
    from reconciler.spaces import shard_of

    token = "tok-spaces-deploy-3b7a"
    sandbox = sandbox_factory(token=token, multi_tenancy=True)
    admin = {"Authorization": f"Bearer {token}"}
    names = [f"tenant-{i}" for i in range(7)]
    repo = tmp_path / "git" / "repo"
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    lines = ["owner: platform", "spaces:"]
    for name in names:
        created = httpx.post(
            sandbox.url + "/api/v1/tenants", json={"name": name, "display_name": name}, headers=admin
        )
        assert created.status_code == 201
        folder = repo / name
        folder.mkdir(parents=True)
        model = f"kind: Model\nname: {name}-m\ndtype: ollama\nconfiguration:\n  model: llama3\n"
        (folder / "m.yaml").write_text(model)
        (secrets / name).write_text(token + "\n")
        lines.append(
            f"  - {{name: {name}, server: '{sandbox.url}', tenant: {name}, "
            f"token: {{file: /var/run/secrets/syft-space/{name}}}, paths: [{name}]}}"
        )
    project = "\n".join(lines) + "\n"
    (repo / "syft-reconciler.yaml").write_text(project.replace("/var/run/secrets/syft-space", str(secrets)))
    daemon = container(spaces_statefulset()["spec"]["template"]["spec"], "reconciler")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYFT_SPACE_", "SYFT_RECONCILER_"))}
    env |= {e["name"]: e["value"] for e in daemon["env"]}
    console = Path(sys.executable).parent / "syft-reconciler"
    shards = int(env["SYFT_RECONCILER_SHARDS"])

    def models_of(tenant):
        headers = {**admin, "X-Tenant-Name": tenant}
        return [m["name"] for m in httpx.get(sandbox.url + "/api/v1/models/", headers=headers).json()]

    for ordinal in (0, 2):
        port = free_port()
        args = mapped(daemon["args"], {"/git": tmp_path / "git"}, port)
        proc = subprocess.Popen(
            [str(console), "watch", *args],
            cwd=tmp_path,
            env=env | {"HOSTNAME": f"syft-reconciler-{ordinal}"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + DEADLINE_S
            while True:
                assert proc.poll() is None, proc.communicate()[1]
                try:
                    ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
                    if ready.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "not ready in time"
                time.sleep(0.05)
            mine = [n for n in names if shard_of(n, shards) == ordinal + 1]
            assert mine
            assert ready.json()["spaces"] == len(mine)
            for name in mine:
                assert models_of(name) == [f"{name}-m"]
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=DEADLINE_S)
            assert proc.returncode == 0, err
            assert token not in err
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    untouched = [n for n in names if shard_of(n, shards) == 2]
    assert untouched and all(models_of(n) == [] for n in untouched)  # shard 2 never ran
