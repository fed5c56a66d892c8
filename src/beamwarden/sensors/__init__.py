"""Room: sensors (pure; imports only ``protocol``). Decoders, one module per sensor family.

Filled by the sensors issue; empty until then.
"""
