"""pre-delete hook of the pyresgate chart: delete one ResgateCluster and wait until it is gone.

argv: namespace, name, seconds to wait for the operator to release it before removing its finalizers.
Runs in the pyresgate image (python3 + the kubernetes client); in-cluster config, else KUBECONFIG.
"""

import sys
import time

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

GROUP, VERSION, PLURAL = "pyresgate.io", "v1alpha1", "resgateclusters"
namespace, name, wait = sys.argv[1], sys.argv[2], float(sys.argv[3])
try:
    config.load_incluster_config()
except ConfigException:
    config.load_kube_config()
api = client.CustomObjectsApi()


def exists() -> bool:
    try:
        api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def wait_gone(seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not exists():
            return True
        time.sleep(1)
    return not exists()


try:
    api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    print(f"deleting ResgateCluster {namespace}/{name}", flush=True)
except ApiException as exc:
    if exc.status != 404:
        raise
if wait_gone(wait):
    print(f"ResgateCluster {namespace}/{name} is gone", flush=True)
    sys.exit(0)
print(
    f"no operator released ResgateCluster {namespace}/{name} in {wait:.0f}s: removing its finalizers",
    flush=True,
)
api.patch_namespaced_custom_object(
    GROUP, VERSION, namespace, PLURAL, name, {"metadata": {"finalizers": None}}
)
sys.exit(0 if wait_gone(30) else f"ResgateCluster {namespace}/{name} is still there")
