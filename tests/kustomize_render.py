"""kustomize, as far as deploy/kubernetes uses it, in plain Python: so that the rendered manifests
are tested on machines without kustomize. tests/test_deploy.py compares this with
`kubectl kustomize` wherever kubectl is installed, so the imitation cannot drift from the real one.

Supported: `resources` (files, and folders rendered recursively), `components` (kind Component),
strategic merge `patches` (maps merge; lists of named maps merge by name; `$patch: delete`
removes an item), `namespace` (a Namespace object is renamed with it), `labels` (`pairs`,
`includeTemplates`; never selectors), and `images` (`newName`, `newTag`, `digest`). Anything else
in a kustomization is refused, so that a new feature there is added here (and compared) first.
"""

import copy
import subprocess
from pathlib import Path

import yaml

KNOWN = {"apiVersion", "kind", "resources", "components", "patches", "namespace", "labels", "images"}
CLUSTER_SCOPED = {"Namespace"}


def load_all(path):
    return [doc for doc in yaml.safe_load_all(Path(path).read_text()) if doc]


def kustomization(folder):
    (doc,) = load_all(Path(folder) / "kustomization.yaml")
    unknown = set(doc) - KNOWN
    assert not unknown, f"{folder}: the imitation does not do {sorted(unknown)}"
    return doc


def merge(base, patch):
    """Strategic merge as far as the overlays use it."""
    if isinstance(base, dict) and isinstance(patch, dict):
        return {**base, **{k: merge(base[k], v) if k in base else v for k, v in patch.items()}}
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(i, dict) and "name" in i for i in base + patch)
    ):
        out = [copy.deepcopy(i) for i in base]
        for item in patch:
            names = [i["name"] for i in out]
            if item.get("$patch") == "delete":
                out = [i for i in out if i["name"] != item["name"]]
            elif item["name"] in names:
                out[names.index(item["name"])] = merge(out[names.index(item["name"])], item)
            else:
                out.append(item)
        return out
    return patch


def split_image(image):
    """(name, ':tag' or '@digest' or '')."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, "@" + digest
    head, _, last = image.rpartition("/")
    if ":" in last:
        last, tag = last.split(":", 1)
        return f"{head}/{last}" if head else last, ":" + tag
    return image, ""


def set_images(doc, images):
    pod = doc.get("spec", {}).get("template", {}).get("spec", {})
    for c in pod.get("containers", []) + pod.get("initContainers", []):
        name, ref = split_image(c["image"])
        for image in images:
            if image["name"] == name:
                name = image.get("newName", name)
                if "digest" in image:
                    ref = "@" + image["digest"]
                elif "newTag" in image:
                    ref = ":" + str(image["newTag"])
        c["image"] = name + ref


def transform(docs, spec, folder):
    for entry in spec.get("patches", []):
        (patch,) = load_all(Path(folder) / entry["path"])
        key = (patch["kind"], patch["metadata"]["name"])
        (target,) = [d for d in docs if (d["kind"], d["metadata"]["name"]) == key]
        docs[docs.index(target)] = merge(target, patch)
    for doc in docs:
        if "namespace" in spec:
            if doc["kind"] == "Namespace":
                doc["metadata"]["name"] = spec["namespace"]
            elif doc["kind"] not in CLUSTER_SCOPED:
                doc["metadata"]["namespace"] = spec["namespace"]
        for group in spec.get("labels", []):
            assert not group.get("includeSelectors"), "selectors are immutable: never labelled"
            pairs = {k: str(v) for k, v in group["pairs"].items()}
            doc["metadata"].setdefault("labels", {}).update(pairs)
            template = doc.get("spec", {}).get("template")
            if group.get("includeTemplates") and template is not None:
                template.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
        set_images(doc, spec.get("images", []))
    return docs


def render(folder):
    """The objects `kustomize build folder` would print (in file order, not kustomize's)."""
    folder = Path(folder)
    spec = kustomization(folder)
    docs = []
    for entry in spec.get("resources", []):
        path = folder / entry
        docs += render(path) if path.is_dir() else [copy.deepcopy(d) for d in load_all(path)]
    for entry in spec.get("components", []):
        component = kustomization(folder / entry)
        assert component["kind"] == "Component"
        docs += [
            copy.deepcopy(d) for r in component.get("resources", []) for d in load_all(folder / entry / r)
        ]
        docs = transform(docs, {**component, "resources": []}, folder / entry)
    return transform(docs, spec, folder)


def kubectl_render(folder):
    """`kubectl kustomize folder`, parsed."""
    done = subprocess.run(
        ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def by_identity(docs):
    out = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in docs}
    assert len(out) == len(docs), "two objects with one identity"
    return out
