"""Builders for the kinds conformance tests: one model, dataset, endpoint or policy per call."""

from concurrent.futures import ThreadPoolExecutor

MODELS = "/api/v1/models/"
DATASETS = "/api/v1/datasets/"
ENDPOINTS = "/api/v1/endpoints/"
POLICIES = "/api/v1/policies/"

WEAVIATE = {
    "http_url": "http://weaviate.invalid:8080",
    "grpc_url": "http://weaviate.invalid:50051",
    "api_key": "wv-secret-canary",
    "collection_name": "Handbook",
}
WORDPRESS = {
    "collectionName": "blog",
    "siteUrl": "http://wordpress.invalid",
    "username": "editor",
    "applicationPassword": "wp-secret-canary",
}


def detail(response):
    return response.json()["detail"]


def created(response):
    assert response.status_code == 201, response.text
    return response.json()


def model(http, name="gpt", headers=None):
    body = {"name": name, "dtype": "openai", "configuration": {"api_key": "sk-canary", "model": "gpt-4o"}}
    return created(http.post(MODELS, json=body, headers=headers))


def dataset(http, name="hb", dtype="remote_weaviate", configuration=None, headers=None, **fields):
    if configuration is None:
        configuration = dict(
            WEAVIATE if dtype == "remote_weaviate" else WORDPRESS if dtype == "wordpress" else {}
        )
    body = {"name": name, "dtype": dtype, "configuration": configuration, **fields}
    return created(http.post(DATASETS, json=body, headers=headers))


def endpoint(http, slug="bot", *, model_id=None, dataset_id=None, headers=None, **fields):
    if model_id is None and dataset_id is None:
        model_id = model(http, f"model-of-{slug}", headers=headers)["id"]
    body = {"name": fields.pop("name", slug.title()), "slug": slug, **fields}
    if model_id is not None:
        body["model_id"] = model_id
    if dataset_id is not None:
        body["dataset_id"] = dataset_id
    return created(http.post(ENDPOINTS, json=body, headers=headers))


def policy(http, endpoint_id, name="per-user", policy_type="rate_limit", configuration=None, headers=None):
    body = {
        "name": name,
        "policy_type": policy_type,
        "configuration": {"limit": "10/m"} if configuration is None else configuration,
        "endpoint_id": endpoint_id,
    }
    return created(http.post(POLICIES, json=body, headers=headers))


def race(http, count, send):
    """`count` requests at once, each on its own connection."""
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda i: send(http, i), range(count)))


def without(body, *keys):
    return {k: v for k, v in body.items() if k not in keys}
