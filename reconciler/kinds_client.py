"""The datasets, endpoints and policies routes, over SpaceClient's bounded request machinery.

Raw JSON stops here: every answer is parsed into a kinds.values Remote* value. Reads retry like
the models' (SpaceClient.request_json); creates are sent once, and apply decides what a failure
means (look up and compare first: ../shared/syft-space-api-kinds.md, "Races").

The server's answers are checked as the models' are (client.py): a create or update that answers
with another object (a dataset's name or dtype, an endpoint's slug, a policy's name or type) is a
failure, and a list that names one object twice (a dataset by name, an endpoint by slug, a policy
by endpoint and name) is an error rather than a plan against one of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from reconciler.client import API, SpaceClient, check_answer, parse_types, refuse_duplicates
from reconciler.errors import ServerError
from reconciler.kinds.values import RemoteDataset, RemoteEndpoint, RemotePick, RemotePolicy
from reconciler.model import ModelType, Pick, pick_bodies

T = TypeVar("T", bound=BaseModel)


class OrphanedPolicies(ServerError):
    """GET /policies/ is a 500: the tenant holds policies whose endpoint was deleted."""


class KindsClient:
    """Datasets, endpoints and policies of one server and tenant (the SpaceClient's)."""

    def __init__(self, client: SpaceClient) -> None:
        self.client = client

    def _parse(self, method: str, path: str, body: Any, model: type[T]) -> T:
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            raise ServerError(f"{method} {path}: unexpected {model.__name__} shape from the server") from exc

    def _get(self, path: str) -> Any:
        return self.client.request_json("GET", path).data

    def _list(self, path: str, model: type[T]) -> list[T]:
        data = self._get(path)
        if not isinstance(data, list):
            raise ServerError(f"GET {path}: expected a list")
        return [self._parse("GET", path, item, model) for item in data]

    def _get_one(self, path: str, model: type[T]) -> T | None:
        try:
            data = self._get(path)
        except ServerError as exc:
            if exc.status == 404:
                return None
            raise
        return self._parse("GET", path, data, model)

    def _write(
        self,
        method: str,
        path: str,
        body: Any,
        model: type[T],
        want: Mapping[str, str | None],
        *,
        retry: bool,
    ) -> T:
        """A create (retry=False: apply looks it up first) or an update; its answer must name
        the object written (`want`: its identity first)."""
        answer = self.client.request_json(method, path, body, retry=retry)
        found = self._parse(method, path, answer.data, model)
        check_answer(method, path, answer.status, model.__name__.removeprefix("Remote").lower(), found, want)
        return found

    # -- datasets (by name) -------------------------------------------------------------------

    @staticmethod
    def dataset_path(name: str) -> str:
        return f"{API}/datasets/{quote(name, safe='')}"

    def list_datasets(self) -> list[RemoteDataset]:
        path = f"{API}/datasets/"
        datasets = self._list(path, RemoteDataset)
        refuse_duplicates(path, [d.name for d in datasets], what="dataset")
        return datasets

    def get_dataset(self, name: str) -> RemoteDataset | None:
        return self._get_one(self.dataset_path(name), RemoteDataset)

    def create_dataset(self, body: dict[str, Any]) -> RemoteDataset:
        want = {"name": body["name"], "dtype": body.get("dtype")}
        return self._write("POST", f"{API}/datasets/", body, RemoteDataset, want, retry=False)

    def patch_dataset(self, name: str, body: dict[str, Any]) -> RemoteDataset:
        return self._write("PATCH", self.dataset_path(name), body, RemoteDataset, {"name": name}, retry=True)

    def delete_dataset(self, name: str) -> bool:
        return self.client.delete(self.dataset_path(name))

    # -- a dataset's selection (../shared/syft-space-api-selections.md) ---------------------------

    SELECTION_PAGE = 200  # the server's largest page
    MAX_PICKS = 100_000  # a server paging without end stops here

    def selection(self, name: str) -> tuple[RemotePick, ...]:
        """Every pick of a dataset, oldest first: the paged GET /selection until `total`."""
        path = f"{self.dataset_path(name)}/selection"
        picks: list[RemotePick] = []
        while True:
            page = f"{path}?limit={self.SELECTION_PAGE}&offset={len(picks)}"
            data = self._get(page)
            items = data.get("items") if isinstance(data, dict) else None
            total = data.get("total") if isinstance(data, dict) else None
            if not isinstance(items, list) or not isinstance(total, int):
                raise ServerError(f"GET {page}: expected {{items, total}}")
            picks += [self._parse("GET", page, item, RemotePick) for item in items]
            if not items or len(picks) >= total:
                break
            if len(picks) > self.MAX_PICKS:
                raise ServerError(f"GET {path}: more than {self.MAX_PICKS:,} picks; stopped reading")
        refuse_duplicates(path, [p.item_id for p in picks], what="selected item")
        return tuple(picks)

    def remove_picks(self, name: str, item_ids: list[str]) -> tuple[RemotePick, ...]:
        """DELETE /selection (idempotent): the selection that remains."""
        return self._picks("DELETE", name, {"item_ids": item_ids})

    def add_picks(self, name: str, picks: list[Pick]) -> tuple[RemotePick, ...]:
        """POST /selection (idempotent; a stored description wins): the whole selection after."""
        return self._picks("POST", name, {"items": pick_bodies(picks)})

    def _picks(self, method: str, name: str, body: dict[str, Any]) -> tuple[RemotePick, ...]:
        path = f"{self.dataset_path(name)}/selection"
        data = self.client.request_json(method, path, body, retry=True).data
        items = data.get("selected_items") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ServerError(f"{method} {path}: expected {{selected_items: [...]}}")
        return tuple(self._parse(method, path, item, RemotePick) for item in items)

    # -- endpoints (by slug, exact) -----------------------------------------------------------

    @staticmethod
    def endpoint_path(slug: str) -> str:
        return f"{API}/endpoints/{quote(slug, safe='')}"

    def list_endpoints(self) -> list[RemoteEndpoint]:
        path = f"{API}/endpoints/"
        endpoints = self._list(path, RemoteEndpoint)
        refuse_duplicates(path, [e.slug for e in endpoints], what="endpoint")
        return endpoints

    def get_endpoint(self, slug: str) -> RemoteEndpoint | None:
        """The detail: with `description` and the policies' configurations."""
        return self._get_one(self.endpoint_path(slug), RemoteEndpoint)

    def create_endpoint(self, body: dict[str, Any]) -> RemoteEndpoint:
        want = {"slug": body["slug"]}
        return self._write("POST", f"{API}/endpoints/", body, RemoteEndpoint, want, retry=False)

    def patch_endpoint(self, slug: str, body: dict[str, Any]) -> RemoteEndpoint:
        path = self.endpoint_path(slug)
        return self._write("PATCH", path, body, RemoteEndpoint, {"slug": slug}, retry=True)

    def delete_endpoint(self, slug: str) -> bool:
        return self.client.delete(self.endpoint_path(slug))

    # -- policies (by id) ---------------------------------------------------------------------

    @staticmethod
    def policy_path(policy_id: str) -> str:
        return f"{API}/policies/{quote(policy_id, safe='')}"

    def list_policies(self) -> list[RemotePolicy]:
        """Every policy of the tenant, without configuration. A 500 here means orphans."""
        path = f"{API}/policies/"
        try:
            policies = self._list(path, RemotePolicy)
        except ServerError as exc:
            if exc.status != 500:
                raise
            tenant = f" tenant {self.client.tenant!r} of" if self.client.tenant else ""
            raise OrphanedPolicies(
                f"GET {path} answers 500: the{tenant} server holds policies whose endpoint was deleted "
                "(deleting an endpoint leaves its policies orphaned, and the list fails from then on). "
                "Nothing was written. To recover, delete the orphaned policies by id "
                "(DELETE /api/v1/policies/{id} still works: the ids are in your server's database or logs), "
                "then run again",
                status=500,
            ) from exc
        # a policy is known by its endpoint and its name (its id is the server's, not ours)
        refuse_duplicates(path, [f"{p.endpoint_id}/{p.name}" for p in policies], what="policy")
        return policies

    def create_policy(self, body: dict[str, Any]) -> RemotePolicy:
        want = {"name": body["name"], "policy_type": body.get("policy_type")}
        return self._write("POST", f"{API}/policies/", body, RemotePolicy, want, retry=False)

    def patch_policy(
        self, policy_id: str, body: dict[str, Any], *, name: str, policy_type: str
    ) -> RemotePolicy:
        """PATCH a policy by id; it must answer as the policy `name` of type `policy_type`."""
        want = {"name": name, "policy_type": policy_type}
        return self._write("PATCH", self.policy_path(policy_id), body, RemotePolicy, want, retry=True)

    def delete_policy(self, policy_id: str) -> bool:
        return self.client.delete(self.policy_path(policy_id))

    # -- types (admin key, no tenant) ------------------------------------------------------------

    def _types(self, path: str) -> list[ModelType]:
        return parse_types(path, self._get(path))

    def dataset_types(self) -> list[ModelType]:
        return self._types(f"{API}/datasets/types/")

    def policy_types(self) -> list[ModelType]:
        return self._types(f"{API}/policies/types/")

    def types_if_served(self, collection: str) -> list[ModelType] | None:
        """The types of `datasets` or `policies`; None when the route is a 404 (a server older
        than that kind: `schema pull` goes on with what it has)."""
        try:
            return self._types(f"{API}/{collection}/types/")
        except ServerError as exc:
            if exc.status == 404:
                return None
            raise
