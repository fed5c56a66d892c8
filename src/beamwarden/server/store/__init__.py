"""Room: server/store (adapter). SQLAlchemy Core schema, SQLite and PostgreSQL stores, migrations."""
