"""Room: server/services. Ingest, registry, credentials, activity, queries; ports as Protocols.

Services import ``protocol``, ``fleet`` and the server's ``records`` and ``errors``; never an
adapter, never HTTP.
"""
