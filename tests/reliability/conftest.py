from tests.e2e.conftest import api, cli, manifest_dir  # noqa: F401  (shared fixtures)
