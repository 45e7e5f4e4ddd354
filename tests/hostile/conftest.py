from tests.e2e.conftest import cli, manifest_dir  # noqa: F401  (shared fixtures)
