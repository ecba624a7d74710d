"""Alembic migrations of the store; run by ``Store.open`` (see ``control_api.store.migrate``)."""
