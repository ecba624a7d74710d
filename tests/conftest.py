"""Fixtures shared across the suite: a PostgreSQL server for the store's second backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.peers import require
from tests.pg import PgCluster, find_bin_dir


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One throwaway PostgreSQL server for the whole run (tests make their own databases)."""
    bin_dir = find_bin_dir()
    require(bin_dir is not None, "PostgreSQL server not installed (Debian package postgresql)")
    cluster = PgCluster(bin_dir).start()
    try:
        yield cluster
    finally:
        cluster.stop()
