"""The datasets, endpoints and policies routes, over SpaceClient's bounded request machinery.

Raw JSON stops here: every answer is parsed into a kinds.values Remote* value. Reads retry like
the models' (client._request); creates are sent once, and apply decides what a failure means
(look up and compare first: ../shared/syft-space-api-kinds.md, "Races").
"""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from reconciler.client import API, SpaceClient, parse_types
from reconciler.errors import ServerError
from reconciler.kinds.values import RemoteDataset, RemoteEndpoint, RemotePolicy
from reconciler.model import ModelType

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
        return self.client._json("GET", path, self.client._request("GET", path))

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

    def _write(self, method: str, path: str, body: Any, model: type[T], *, retry: bool) -> T:
        response = self.client._request(method, path, body, retry=retry)
        return self._parse(method, path, self.client._json(method, path, response), model)

    def _delete(self, path: str) -> bool:
        try:
            self.client._request("DELETE", path)
        except ServerError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # -- datasets (by name) -------------------------------------------------------------------

    @staticmethod
    def dataset_path(name: str) -> str:
        return f"{API}/datasets/{quote(name, safe='')}"

    def list_datasets(self) -> list[RemoteDataset]:
        return self._list(f"{API}/datasets/", RemoteDataset)

    def get_dataset(self, name: str) -> RemoteDataset | None:
        return self._get_one(self.dataset_path(name), RemoteDataset)

    def create_dataset(self, body: dict[str, Any]) -> RemoteDataset:
        return self._write("POST", f"{API}/datasets/", body, RemoteDataset, retry=False)

    def patch_dataset(self, name: str, body: dict[str, Any]) -> RemoteDataset:
        return self._write("PATCH", self.dataset_path(name), body, RemoteDataset, retry=True)

    def delete_dataset(self, name: str) -> bool:
        return self._delete(self.dataset_path(name))

    # -- endpoints (by slug, exact) -----------------------------------------------------------

    @staticmethod
    def endpoint_path(slug: str) -> str:
        return f"{API}/endpoints/{quote(slug, safe='')}"

    def list_endpoints(self) -> list[RemoteEndpoint]:
        return self._list(f"{API}/endpoints/", RemoteEndpoint)

    def get_endpoint(self, slug: str) -> RemoteEndpoint | None:
        """The detail: with `description` and the policies' configurations."""
        return self._get_one(self.endpoint_path(slug), RemoteEndpoint)

    def create_endpoint(self, body: dict[str, Any]) -> RemoteEndpoint:
        return self._write("POST", f"{API}/endpoints/", body, RemoteEndpoint, retry=False)

    def patch_endpoint(self, slug: str, body: dict[str, Any]) -> RemoteEndpoint:
        return self._write("PATCH", self.endpoint_path(slug), body, RemoteEndpoint, retry=True)

    def delete_endpoint(self, slug: str) -> bool:
        return self._delete(self.endpoint_path(slug))

    # -- policies (by id) ---------------------------------------------------------------------

    def list_policies(self) -> list[RemotePolicy]:
        """Every policy of the tenant, without configuration. A 500 here means orphans."""
        path = f"{API}/policies/"
        try:
            return self._list(path, RemotePolicy)
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

    def create_policy(self, body: dict[str, Any]) -> RemotePolicy:
        return self._write("POST", f"{API}/policies/", body, RemotePolicy, retry=False)

    def patch_policy(self, policy_id: str, body: dict[str, Any]) -> RemotePolicy:
        return self._write(
            "PATCH", f"{API}/policies/{quote(policy_id, safe='')}", body, RemotePolicy, retry=True
        )

    def delete_policy(self, policy_id: str) -> bool:
        return self._delete(f"{API}/policies/{quote(policy_id, safe='')}")

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
