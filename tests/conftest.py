"""Fixtures shared across the suite: a PostgreSQL server for the store's second backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.peers import require
from tests.pg import PgCluster, find_bin_dir, shared_cluster, stop_shared

# The suite must stay green on a busy machine (CI shares its cores): no property test
# fails because generating or running its examples took longer than hypothesis expects.
settings.register_profile("busy", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("busy")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "solo: load-sensitive (floods, hundreds of calls, a cluster): `make test` runs these "
        "alone, after the other interop and security tests have run on several workers",
    )


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One throwaway PostgreSQL server for the whole run (tests make their own databases)."""
    require(
        find_bin_dir() is not None, "PostgreSQL server not installed (Debian package postgresql)"
    )
    yield shared_cluster()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Also ends a cluster the interop harness started under CALLSWITCH_TEST_STORE.
    stop_shared()
