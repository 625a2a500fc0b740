"""pyresgate's Kubernetes operator (import name ``pyresgate_operator``; the folder is ``operator/``).

It reconciles ``ResgateCluster`` custom resources (``pyresgate.io/v1alpha1``) into gateway
Deployments, Services, ConfigMaps and PodDisruptionBudgets. Layers, bottom up: ``spec`` (the custom
resource read into typed values) → ``build`` (pure builders of the desired objects) → ``status``
and ``health`` (pure: conditions, pods to replace) → ``kube`` (API calls) → ``reconcile`` (one level-based
pass) → ``handlers`` (kopf decorators) → ``cli``.
"""

from importlib import metadata

try:
    __version__ = metadata.version("pyresgate")
except metadata.PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"
