"""Room: server. Ingestion, registry, status, activity, API and (later) dashboard.

``app.create_app(settings)`` and the CLI are the only places that construct concrete adapters.
"""
