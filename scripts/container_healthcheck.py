"""Health check of the pyresgate container image: ``GET /healthz`` on the gateway's admin listener.

Run by the image's HEALTHCHECK (see the Dockerfile) inside the container, so it finds the gateway where
the gateway's own settings put it: the admin port (``adminPort``, default 9090) and the bind address
(``addr``; all interfaces → the loopback address), each from ``RESGATE_ADMIN_PORT`` / ``RESGATE_ADDR``,
else from the config file (``RESGATE_CONFIG``, else a file mounted at ``/etc/pyresgate/config.json``, as
the entry point uses), else the default. Flags on the command line are not seen: set ports through the
environment or the file. With the admin listener off (admin port 0) there is no ``/healthz``; then a TCP
connect to the client port (``port``, default 8080) is the check. Exit 0 when healthy, else 1 with one
line saying why.

Standard library only (the image has no curl), and nothing written anywhere (read-only root).
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import socket
import sys
from collections.abc import Mapping
from typing import Any

#: The gateway's defaults (gateway/config.py) for the settings read here.
DEFAULT_ADMIN_PORT = 9090
DEFAULT_PORT = 8080
#: Where the image's entry point looks for a config file when RESGATE_CONFIG names none.
MOUNTED_CONFIG = "/etc/pyresgate/config.json"
#: Settings read here: environment variable suffix → config file key (matched case-insensitively).
_KEYS = {"ADMIN_PORT": "adminport", "ADDR": "addr", "PORT": "port"}
#: Seconds for the whole check; HEALTHCHECK's own --timeout is longer.
TIMEOUT = 3.0


class CheckError(Exception):
    """The gateway is not healthy, or the settings cannot be read; the message says which."""


def settings(env: Mapping[str, str], mounted: str = MOUNTED_CONFIG) -> dict[str, str]:
    """The settings of ``_KEYS`` that are set, as strings: ``RESGATE_*`` over the config file."""
    found: dict[str, str] = {}
    path = env.get("RESGATE_CONFIG") or (mounted if os.path.isfile(mounted) else None)
    if path:
        file_values = _read_config(path)
        for name, key in _KEYS.items():
            if key in file_values and file_values[key] is not None:
                found[name] = str(file_values[key])
    for name in _KEYS:
        value = env.get(f"RESGATE_{name}")
        # An empty value counts as unset (as the gateway reads it), except RESGATE_ADDR= (all interfaces).
        if value is not None and (value.strip() or name == "ADDR"):
            found[name] = value.strip()
    return found


def _read_config(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}  # the gateway creates a missing file with its defaults
    except (OSError, ValueError) as exc:
        raise CheckError(f"cannot read config file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise CheckError(f"config file {path} does not hold a JSON object")
    return {str(k).lower(): v for k, v in data.items()}


def _port(found: Mapping[str, str], name: str, default: int) -> int:
    raw = found.get(name)
    if raw is None:
        return default
    try:
        port = int(raw)
    except ValueError:
        raise CheckError(f"{name.lower()} setting {raw!r} is not a port number") from None
    if not 0 <= port < 65536:
        raise CheckError(f"{name.lower()} setting {port} is not a port number")
    return port


def target_host(found: Mapping[str, str]) -> str:
    """Where the listeners are reachable from inside the container: the bind address, or loopback
    when the gateway listens on every interface."""
    addr = found.get("ADDR", "").strip()
    if addr in ("", "0.0.0.0"):  # unset, "" (all interfaces) or the default
        return "127.0.0.1"
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        raise CheckError(f"addr setting {addr!r} is not an IP address") from None
    if ip.is_unspecified:
        return "::1" if ip.version == 6 else "127.0.0.1"
    return addr


def check(env: Mapping[str, str], mounted: str = MOUNTED_CONFIG) -> str:
    """Check the gateway that ``env`` (and its config file) configure; returns what was checked, raises
    ``CheckError``."""
    found = settings(env, mounted)
    host = target_host(found)
    admin_port = _port(found, "ADMIN_PORT", DEFAULT_ADMIN_PORT)
    if admin_port == 0:
        port = _port(found, "PORT", DEFAULT_PORT) or DEFAULT_PORT  # 0 means 8080, as in the gateway
        try:
            socket.create_connection((host, port), timeout=TIMEOUT).close()
        except OSError as exc:
            raise CheckError(f"client port {host}:{port} not accepting: {exc}") from None
        return f"admin listener off; client port {host}:{port} accepts connections"
    conn = http.client.HTTPConnection(host, admin_port, timeout=TIMEOUT)
    try:
        conn.request("GET", "/healthz")
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        raise CheckError(f"GET /healthz on {host}:{admin_port} failed: {exc}") from None
    finally:
        conn.close()
    if status != 200:
        raise CheckError(f"GET /healthz on {host}:{admin_port} answered {status}")
    return f"GET /healthz on {host}:{admin_port}: 200"


def main() -> int:
    try:
        print(check(os.environ))
    except CheckError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
