"""kopf handlers: thin decorators that hand every event to ``reconcile``.

Filled in by the reconcile work; kept importable so that ``pyresgate-operator`` starts.
"""

from __future__ import annotations
