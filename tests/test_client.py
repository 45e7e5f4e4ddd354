import json
import re

import httpx
import pytest

from reconciler.backoff import Backoff
from reconciler.client import SpaceClient
from reconciler.errors import (
    AuthError,
    ReconcilerError,
    RetryableServerError,
    ServerError,
    TenantNotFound,
    UncertainWrite,
)
from reconciler.transport import is_loopback

MODEL = {
    "id": "1",
    "name": "m",
    "dtype": "openai",
    "configuration": {},
    "summary": "",
    "tags": "",
    "created_at": "2026-11-26T18:14:33.508858",
}


def client_for(handler, **kw):
    sleeps = []
    c = SpaceClient(
        "http://127.0.0.1:1",
        token="tok",
        transport=httpx.MockTransport(handler),
        retry=Backoff(delays=(0.1, 0.2), jitter=0),
        sleep=sleeps.append,
        **kw,
    )
    return c, sleeps


def test_list_retries_503_then_succeeds_and_honours_retry_after():
    answers = iter(
        [
            httpx.Response(503),
            httpx.Response(429, headers={"Retry-After": "3"}),
            httpx.Response(200, json=[MODEL]),
        ]
    )
    c, sleeps = client_for(lambda request: next(answers))
    assert [m.name for m in c.list_models()] == ["m"]
    assert sleeps == [0.1, 3.0] and c.requests == 3


def test_gives_up_after_the_policy():
    c, sleeps = client_for(lambda request: httpx.Response(503, json={"detail": "busy"}))
    with pytest.raises(RetryableServerError, match="server busy"):
        c.list_models()
    assert c.requests == 3 and len(sleeps) == 2


def test_post_is_never_retried_and_500_text_plain_is_a_server_error():
    c, _ = client_for(lambda r: httpx.Response(500, text="Internal Server Error"))
    with pytest.raises(ServerError) as info:
        c.create_model({"name": "m"})
    assert info.value.status == 500 and c.requests == 1


def test_timeout_on_post_is_uncertain():
    def handler(request):
        raise httpx.ReadTimeout("slow", request=request)

    c, _ = client_for(handler)
    with pytest.raises(UncertainWrite):
        c.create_model({"name": "m"})


def test_422_detail_never_shows_the_echoed_input():
    body = {
        "detail": [
            {
                "type": "missing",
                "loc": ["body", "dtype"],
                "msg": "Field required",
                "input": {"configuration": {"api_key": "sk-canary-422"}},
            }
        ]
    }
    c, _ = client_for(lambda r: httpx.Response(422, json=body))
    with pytest.raises(ServerError) as info:
        c.create_model({})
    assert "sk-canary-422" not in str(info.value)
    assert str(info.value) == "POST /api/v1/models/: 422 body.dtype: Field required"


def test_401_is_an_auth_error_and_headers_are_sent():
    seen = {}

    def handler(request):
        seen.update(request.headers)
        return httpx.Response(401, json={"detail": "Admin API key required"})

    c, _ = client_for(handler, tenant="acme")
    with pytest.raises(AuthError, match="401 Admin API key required"):
        c.list_models()
    assert seen["authorization"] == "Bearer tok" and seen["x-tenant-name"] == "acme"


def test_item_paths_are_percent_encoded():
    seen = []

    def handler(request):
        seen.append(request.url.raw_path.decode())
        return httpx.Response(404, json={"detail": "Model 'x' not found"})

    c, _ = client_for(handler)
    assert c.get_model("a b%?é") is None
    assert seen == ["/api/v1/models/a%20b%25%3F%C3%A9"]


def test_redirect_to_another_host_is_refused():
    def handler(request):
        return httpx.Response(307, headers={"Location": "http://evil.example/api/v1/models/"})

    c, _ = client_for(handler)
    with pytest.raises(ServerError, match=re.escape("redirected to http://evil.example; not following")):
        c.list_models()
    assert c.requests == 1


def test_same_origin_redirect_is_followed_once():
    def handler(request):
        if request.url.path == "/api/v1/models/moved":
            return httpx.Response(200, json=MODEL)
        return httpx.Response(307, headers={"Location": "http://127.0.0.1:1/api/v1/models/moved"})

    c, _ = client_for(handler)
    assert c.get_model("m").name == "m"
    assert c.requests == 2


def test_unknown_tenant_is_refused():
    c, _ = client_for(
        lambda r: httpx.Response(404, json={"detail": "Tenant 'acme' not found"}), tenant="acme"
    )
    with pytest.raises(TenantNotFound, match=re.escape("tenant 'acme' does not exist on http://127.0.0.1:1")):
        c.check_tenant()


def test_plain_http_token_to_remote_host_is_refused():
    with pytest.raises(ReconcilerError, match="refusing to send the token over plain http"):
        SpaceClient("http://space.example.org", token="t")
    SpaceClient("http://space.example.org", token="t", insecure=True).close()
    SpaceClient("https://space.example.org", token="t").close()


@pytest.mark.parametrize(
    ("host", "expected"),
    [("localhost", True), ("127.0.0.2", True), ("::1", True), ("10.0.0.1", False), ("example.org", False)],
)
def test_is_loopback(host, expected):
    assert is_loopback(host) is expected


def test_non_json_answer_is_a_clear_error():
    c, _ = client_for(lambda r: httpx.Response(200, text="<html>proxy</html>"))
    with pytest.raises(ServerError, match="not JSON"):
        c.list_models()
    json.dumps({})
