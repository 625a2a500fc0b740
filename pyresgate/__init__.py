"""pyresgate: the Python side of RES besides the gateway (import name ``gateway``).

``pyresgate.service`` is the library for writing RES services in Python; see docs/service-library.md.
"""
