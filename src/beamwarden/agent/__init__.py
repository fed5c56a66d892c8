"""Room: agent (pi-log; imports protocol, sensors, obs). The per-node agent.

Filled by the agent issue; empty until then.
"""
