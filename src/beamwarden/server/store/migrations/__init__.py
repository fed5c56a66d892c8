"""Room: server/store (adapter). Alembic migrations of the store (``script_location`` =
``beamwarden.server.store:migrations``); a package so that they ship with the distribution."""
