"""pyresgate: a RES protocol gateway (drop-in replacement for resgate 1.8.0)."""

__version__ = "0.1.0"
