"""Room: obs (stands alone). Embedded logs and metrics for any Python app.

Filled by the obs issue; empty until then.
"""
