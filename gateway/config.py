"""Gateway configuration: one frozen settings object, resgate 1.8.0 keys and rules.

``load_config`` builds it from four layers, later ones winning:

    defaults  <  JSON config file (``-c`` / ``RESGATE_CONFIG``)  <  ``RESGATE_*`` env vars  <  CLI flags

Called by ``gateway.cli`` (flags are parsed there and handed over as field values); everything else
reads the finished ``Config``. The JSON file uses resgate's keys (``natsUrl``, ``requestTimeout``…),
matched case-insensitively like Go's encoding/json; unknown keys are ignored, as resgate does.
Environment variables are ``RESGATE_`` + the upper-cased Python field name (``RESGATE_NATS_URL``).

Every rule that makes resgate refuse to start raises ``ConfigError`` with one line naming the JSON
key. Values are normalised on the way in (``apiPath`` gains a trailing ``/``, ``allowOrigin`` is
lower-cased and sorted, ``apiEncoding`` lower-cased, port 0 becomes 8080, a request timeout of 10 or
less is read as seconds), so consumers use the fields as they are.
"""

from __future__ import annotations

import contextvars
import ipaddress
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gateway.constants import (
    DEFAULT_CACHE_EVICTION_DELAY_MS,
    DEFAULT_CLIENT_OUTBOX_LIMIT,
    DEFAULT_NATS_URL,
    DEFAULT_PORT,
    DEFAULT_REQUEST_TIMEOUT_MS,
    DEFAULT_WS_MAX_MESSAGE_SIZE,
    DEFAULT_WS_MAX_PENDING_REQUESTS,
    DEFAULT_WS_MAX_SUBSCRIPTIONS,
    MIN_CLIENT_OUTBOX_LIMIT,
    MIN_WS_MAX_MESSAGE_SIZE,
)

log = logging.getLogger(__name__)

#: Prefix of the environment variables read by ``load_config``.
ENV_PREFIX = "RESGATE_"
#: Environment variable naming the JSON config file when ``-c`` is not given (pyresgate extension).
CONFIG_FILE_ENV = "RESGATE_CONFIG"
#: Encodings accepted by ``apiEncoding``.
API_ENCODINGS = ("json", "jsonflat")
#: A request timeout at or below this many units is taken as seconds (resgate's deprecated unit).
LEGACY_SECONDS_TIMEOUT_MAX = 10
#: Default admin port (health, readiness, metrics) — pyresgate extension.
DEFAULT_ADMIN_PORT = 9090

_ORIGIN_RE = re.compile(
    r"[a-z][a-z0-9+.\-]*://"  # scheme
    r"(?:[a-z0-9._~%\-]+|\[[0-9a-f:.]+\])"  # host name, IPv4 or bracketed IPv6
    r"(?::[0-9]+)?"  # optional port
)


class ConfigError(Exception):
    """Invalid configuration; the message is one line naming the offending key."""


#: Schema limits of a TCP port setting (0 means off or default, per setting).
PORT_RANGE: dict[str, Any] = {"minimum": 0, "maximum": 65535}


def _key(
    json_key: str, default: Any, description: str, *, schema: dict[str, Any] | None = None, **kwargs: Any
) -> Any:
    """A field known under resgate's JSON key (also accepted: the Python field name).

    ``schema`` states the limits the validators below enforce, in JSON-schema words, so that the
    operator's CRD (``pyresgate_operator.crd``) can publish them; a test checks both agree.
    """
    return Field(default, alias=json_key, description=description, json_schema_extra=schema, **kwargs)


class Config(BaseSettings):
    """Effective gateway settings. Frozen; build it with ``load_config``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        frozen=True,
        populate_by_name=True,
        extra="ignore",
    )

    # --- NATS -------------------------------------------------------------------------------------
    nats_url: str = _key("natsUrl", DEFAULT_NATS_URL, "NATS server URL")
    nats_creds: str = _key("natsCreds", "", "NATS user credentials file")
    nats_cert: str = _key("natsCert", "", "NATS client certificate file (requires natsKey)")
    nats_key: str = _key("natsKey", "", "NATS client private key file (requires natsCert)")
    nats_root_cas: list[str] = _key("natsRootCAs", [], "NATS root CA files")
    request_timeout: int = _key(
        "requestTimeout",
        DEFAULT_REQUEST_TIMEOUT_MS,
        "Timeout of requests to services, milliseconds",
        schema={"minimum": 0},
    )
    buffer_size: int = _key(
        "bufferSize",
        8192,
        "NATS incoming message buffer (messages); accepted for compatibility, no effect: messages are "
        "handled as they are read",
        schema={"minimum": 0},
    )

    # --- logging ----------------------------------------------------------------------------------
    debug: bool = _key("debug", False, "Enable debug logging")
    trace: bool = _key("trace", False, "Enable trace logging")

    # --- client listener --------------------------------------------------------------------------
    addr: str = _key("addr", "0.0.0.0", 'Bind address (IPv4/IPv6 literal; "" = all interfaces)')
    port: int = _key("port", DEFAULT_PORT, "HTTP/WebSocket port", schema=PORT_RANGE)
    ws_path: str = _key("wsPath", "/", "WebSocket path")
    api_path: str = _key("apiPath", "/api/", "HTTP API path prefix (always ends with /)")
    metrics_port: int = _key("metricsPort", 0, "Metrics port (0 = disabled)", schema=PORT_RANGE)
    api_encoding: str = _key(
        "apiEncoding",
        "json",
        "HTTP API encoding: json or jsonflat",
        schema={"pattern": "^(?i)(json|jsonflat)$"},
    )
    header_auth: str | None = _key("headerAuth", None, "Auth method for HTTP requests: <rid>.<method>")
    ws_header_auth: str | None = _key(
        "wsHeaderAuth", None, "Auth method for WebSocket upgrades: <rid>.<method>"
    )
    allow_origin: str = _key("allowOrigin", "*", '"*" or ";"-separated allowed origins')
    put_method: str | None = _key("putMethod", None, "Call method mapped to HTTP PUT")
    delete_method: str | None = _key("deleteMethod", None, "Call method mapped to HTTP DELETE")
    patch_method: str | None = _key("patchMethod", None, "Call method mapped to HTTP PATCH")
    tls: bool = _key("tls", False, "Serve HTTPS/WSS (and metrics over TLS)")
    cert_file: str = _key("certFile", "", "TLS certificate file")
    key_file: str = _key("keyFile", "", "TLS private key file")
    ws_compression: bool = _key("wsCompression", False, "Enable permessage-deflate for WebSockets")
    reset_throttle: int = _key(
        "resetThrottle", 0, "Max concurrent requests on system.reset (0 = unlimited)", schema={"minimum": 0}
    )
    reference_throttle: int = _key(
        "referenceThrottle",
        0,
        "Max concurrent gets while loading references (0 = unlimited)",
        schema={"minimum": 0},
    )

    # --- pyresgate extensions (not in resgate) ------------------------------------------------------
    cache_eviction_delay: int = _key(
        "cacheEvictionDelay",
        DEFAULT_CACHE_EVICTION_DELAY_MS,
        "Milliseconds an unused resource stays cached (resgate: fixed 5000)",
        schema={"minimum": 0},
    )
    admin_port: int = _key(
        "adminPort", DEFAULT_ADMIN_PORT, "Admin port: health, readiness, metrics (0 = off)", schema=PORT_RANGE
    )
    exit_on_nats_loss: bool = _key(
        "exitOnNatsLoss", False, "Exit with code 1 when the NATS connection is lost, as resgate does"
    )
    workers: int = _key(
        "workers",
        1,
        "Gateway processes sharing the client port (SO_REUSEPORT), each a full gateway",
        schema={"minimum": 1},
    )
    drain_period: int = _key(
        "drainPeriod",
        0,
        "Milliseconds to keep serving after SIGTERM while /readyz reports unready",
        schema={"minimum": 0},
    )
    ws_close_rate: int = _key(
        "wsCloseRate",
        1000,
        "WebSocket connections closed per second on shutdown (0 = all at once)",
        schema={"minimum": 0},
    )
    shutdown_timeout: int = _key(
        "shutdownTimeout",
        10000,
        "Milliseconds a graceful shutdown may take before leftovers are cut",
        schema={"minimum": 0},
    )
    tracing: bool = _key(
        "tracing",
        False,
        "OpenTelemetry tracing, exported as the OTEL_* variables say (also on when "
        "OTEL_TRACES_EXPORTER is set and not none)",
    )
    # Limits on what one client can make the gateway hold (see docs/reliability.md).
    client_outbox_limit: int = _key(
        "clientOutboxLimit",
        DEFAULT_CLIENT_OUTBOX_LIMIT,
        "Bytes of output the gateway holds for one client (WebSocket or HTTP) that does not read; "
        "past it the client is disconnected as a slow consumer",
        schema={"minimum": MIN_CLIENT_OUTBOX_LIMIT},
    )
    ws_max_message_size: int = _key(
        "wsMaxMessageSize",
        DEFAULT_WS_MAX_MESSAGE_SIZE,
        "Largest WebSocket message accepted from a client, bytes; a larger one closes the connection "
        "with 1009 (message too big)",
        schema={"minimum": MIN_WS_MAX_MESSAGE_SIZE},
    )
    ws_max_subscriptions: int = _key(
        "wsMaxSubscriptions",
        DEFAULT_WS_MAX_SUBSCRIPTIONS,
        "Resources one WebSocket connection may subscribe directly; more get "
        "system.subscriptionLimitExceeded",
        schema={"minimum": 1},
    )
    ws_max_pending_requests: int = _key(
        "wsMaxPendingRequests",
        DEFAULT_WS_MAX_PENDING_REQUESTS,
        "Requests one WebSocket connection may have unanswered; more get system.requestLimitExceeded",
        schema={"minimum": 1},
    )

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise _config_error(exc) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Highest priority first: init values (CLI flags) > RESGATE_* env > JSON file > defaults.
        layers = _LAYERS.get()
        env = layers.env if layers is not None else os.environ
        file_values = layers.file_values if layers is not None else {}
        return (
            init_settings,
            _EnvSource(settings_cls, env),
            _MappingSource(settings_cls, file_values),
        )

    # --- normalisation and validation ------------------------------------------------------------

    @field_validator("nats_root_cas", mode="before")
    @classmethod
    def _null_list(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("request_timeout")
    @classmethod
    def _request_timeout(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must not be negative")
        if value == 0:
            return DEFAULT_REQUEST_TIMEOUT_MS
        if value <= LEGACY_SECONDS_TIMEOUT_MAX:
            log.warning(
                "[DEPRECATED] requestTimeout is in milliseconds; %d is read as %d ms. "
                "Set it to %d to silence this warning.",
                value,
                value * 1000,
                value * 1000,
            )
            return value * 1000
        return value

    @field_validator("buffer_size")
    @classmethod
    def _buffer_size(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must not be negative")
        return value or 8192

    @field_validator("addr")
    @classmethod
    def _addr(cls, value: str) -> str:
        if value == "":
            return value
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("must be a valid IPv4 or IPv6 address") from None
        return value

    @field_validator("port")
    @classmethod
    def _port(cls, value: int) -> int:
        if value == 0:
            return DEFAULT_PORT
        return _check_port(value)

    @field_validator("metrics_port", "admin_port")
    @classmethod
    def _optional_port(cls, value: int) -> int:
        return _check_port(value)

    @field_validator("ws_path")
    @classmethod
    def _ws_path(cls, value: str) -> str:
        return value if value.startswith("/") else "/" + value

    @field_validator("api_path")
    @classmethod
    def _api_path(cls, value: str) -> str:
        if not value.startswith("/"):
            value = "/" + value
        return value if value.endswith("/") else value + "/"

    @field_validator("api_encoding")
    @classmethod
    def _api_encoding(cls, value: str) -> str:
        encoding = value.lower()
        if encoding not in API_ENCODINGS:
            raise ValueError("available encodings are " + ", ".join(API_ENCODINGS))
        return encoding

    @field_validator("header_auth", "ws_header_auth")
    @classmethod
    def _auth_method(cls, value: str | None) -> str | None:
        if value is not None:
            _split_auth_method(value)
        return value

    @field_validator("allow_origin")
    @classmethod
    def _allow_origin(cls, value: str) -> str:
        if value == "*":
            return value
        origins = value.lower().split(";")
        for origin in origins:
            if origin == "*":
                raise ValueError('"*" cannot be combined with other origins')
            if not _ORIGIN_RE.fullmatch(origin):
                raise ValueError(f'origin "{origin}" is not <scheme>://<host>[:<port>] (list separator: ";")')
        return ";".join(sorted(origins))

    @field_validator("put_method", "delete_method", "patch_method")
    @classmethod
    def _mapped_method(cls, value: str | None) -> str | None:
        from gateway.protocol.rid import is_valid_part

        if value is not None and not is_valid_part(value):
            raise ValueError("must be a valid method name (no dots, spaces, wildcards or ?)")
        return value

    @field_validator("workers")
    @classmethod
    def _workers(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value

    @field_validator(
        "reset_throttle",
        "reference_throttle",
        "cache_eviction_delay",
        "drain_period",
        "ws_close_rate",
        "shutdown_timeout",
    )
    @classmethod
    def _non_negative(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must not be negative")
        return value

    @field_validator(
        "client_outbox_limit", "ws_max_message_size", "ws_max_subscriptions", "ws_max_pending_requests"
    )
    @classmethod
    def _at_least_minimum(cls, value: int, info: ValidationInfo) -> int:
        assert info.field_name is not None
        extra = cls.model_fields[info.field_name].json_schema_extra
        minimum = extra.get("minimum") if isinstance(extra, dict) else None
        if isinstance(minimum, int) and value < minimum:
            raise ValueError(f"must be at least {minimum}")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        if self.metrics_port and self.metrics_port == self.port:
            raise ConfigError(f"invalid metricsPort setting ({self.metrics_port}): must differ from port")
        if self.admin_port and self.admin_port in (self.port, self.metrics_port):
            raise ConfigError(
                f"invalid adminPort setting ({self.admin_port}): must differ from port and metricsPort"
            )
        if bool(self.nats_cert) != bool(self.nats_key):
            missing = "natsKey" if self.nats_cert else "natsCert"
            raise ConfigError(f"missing {missing} setting: natsCert and natsKey must be set together")
        if self.tls:
            for key, value in (("certFile", self.cert_file), ("keyFile", self.key_file)):
                if not value:
                    raise ConfigError(f"missing {key} setting: required when tls is enabled")
        return self

    # --- derived values --------------------------------------------------------------------------

    @property
    def nats_url_configured(self) -> bool:
        """True if a NATS URL was given by a flag, env var or config file (not just the default)."""
        return "nats_url" in self.model_fields_set

    @property
    def request_timeout_s(self) -> float:
        return self.request_timeout / 1000

    @property
    def cache_eviction_delay_s(self) -> float:
        return self.cache_eviction_delay / 1000

    @property
    def listen_host(self) -> str | None:
        """Host to bind the client listener to; None means every IPv4 and IPv6 interface."""
        return self.addr or None

    @property
    def listen_address(self) -> str:
        """``host:port`` of the client listener for log lines (IPv6 bracketed)."""
        host = self.addr
        if ":" in host:
            host = f"[{host}]"
        return f"{host}:{self.port}"

    @property
    def allowed_origins(self) -> list[str] | None:
        """Allowed origins, lower-case and sorted; None when any origin is allowed ("*")."""
        return None if self.allow_origin == "*" else self.allow_origin.split(";")

    @property
    def header_auth_parts(self) -> tuple[str, str] | None:
        """(rid, method) of ``headerAuth``, or None when unset."""
        return None if self.header_auth is None else _split_auth_method(self.header_auth)

    @property
    def ws_header_auth_parts(self) -> tuple[str, str] | None:
        """(rid, method) of ``wsHeaderAuth``, or None when unset."""
        return None if self.ws_header_auth is None else _split_auth_method(self.ws_header_auth)

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def to_json(self) -> str:
        """The settings as a resgate-style JSON config file (resgate keys, tab-indented)."""
        data = self.model_dump(mode="json", by_alias=True)
        return json.dumps(data, indent="\t") + "\n"


# --- helpers for validation -------------------------------------------------------------------------


def _check_port(value: int) -> int:
    if not 0 <= value < 65536:
        raise ValueError("must be between 0 and 65535")
    return value


def _split_auth_method(value: str) -> tuple[str, str]:
    from gateway.protocol.rid import is_valid_part, is_valid_rid

    rid, dot, method = value.rpartition(".")
    if not dot or not is_valid_rid(rid, allow_query=False) or not is_valid_part(method):
        raise ValueError('must be "<resource ID>.<method>" with a valid resource ID (no query) and method')
    return rid, method


#: JSON key of every field, by lower-cased JSON key and lower-cased Python name.
_KEYS_BY_LOWER: dict[str, str] = {}
for _name, _field in Config.model_fields.items():
    assert _field.alias is not None
    _KEYS_BY_LOWER[_field.alias.lower()] = _field.alias
    _KEYS_BY_LOWER[_name.lower()] = _field.alias


def _config_error(exc: ValidationError) -> ConfigError:
    """The first validation error as one line naming the resgate key."""
    error = exc.errors(include_url=False)[0]
    loc = error.get("loc") or ()
    key = _KEYS_BY_LOWER.get(str(loc[0]).lower(), str(loc[0])) if loc else "config"
    message = str(error.get("msg", "invalid value"))
    message = message.removeprefix("Value error, ")
    value = error.get("input")
    shown = json.dumps(value) if isinstance(value, (str, int, float, bool)) or value is None else repr(value)
    return ConfigError(f"invalid {key} setting ({shown}): {message}")


# --- sources ----------------------------------------------------------------------------------------


class _Layers:
    """Env mapping and parsed file handed to ``settings_customise_sources`` by ``load_config``."""

    def __init__(self, env: Mapping[str, str], file_values: dict[str, Any]) -> None:
        self.env = env
        self.file_values = file_values


_LAYERS: contextvars.ContextVar[_Layers | None] = contextvars.ContextVar("config_layers", default=None)


@contextmanager
def _use_layers(env: Mapping[str, str], file_values: dict[str, Any]) -> Iterator[None]:
    token = _LAYERS.set(_Layers(env, file_values))
    try:
        yield
    finally:
        _LAYERS.reset(token)


class _MappingSource(PydanticBaseSettingsSource):
    """Values already keyed by JSON key (the parsed config file)."""

    def __init__(self, settings_cls: type[BaseSettings], values: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._values = values

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field.alias or field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._values)


class _EnvSource(PydanticBaseSettingsSource):
    """``RESGATE_<FIELD_NAME>`` variables (exact upper-case names).

    An empty value counts as unset, except for plain string settings where "" means something
    (e.g. ``RESGATE_ADDR=`` = all interfaces). List settings take a JSON array or a comma-separated
    list. Booleans and numbers are parsed by pydantic ("true"/"1"/"yes"…).
    """

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._env = env

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        name = ENV_PREFIX + field_name.upper()
        raw = self._env.get(name)
        if raw is None:
            return None, name, False
        if raw == "" and field.annotation is not str:
            return None, name, False
        if field.annotation == list[str]:
            stripped = raw.strip()
            if stripped.startswith("["):
                try:
                    return json.loads(stripped), name, True
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"invalid {name} environment variable: {exc}") from None
            return [item.strip() for item in raw.split(",") if item.strip()], name, True
        return raw, name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, _, _ = self.get_field_value(field, field_name)
            if value is not None:
                values[field.alias or field_name] = value
        return values


# --- config file ------------------------------------------------------------------------------------


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Parse a resgate JSON config file into ``{json key: value}``; None if it does not exist.

    Keys match case-insensitively (as Go's encoding/json does); unknown keys are dropped.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {os.fspath(path)}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"invalid JSON in config file {os.fspath(path)}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"invalid config file {os.fspath(path)}: expected a JSON object")
    return file_keys(data)


def file_keys(data: Mapping[str, Any]) -> dict[str, Any]:
    """Config-file content keyed by resgate's JSON keys: matched case-insensitively, unknown keys dropped."""
    values: dict[str, Any] = {}
    for key, value in data.items():
        json_key = _KEYS_BY_LOWER.get(str(key).lower())
        if json_key is not None:
            values[json_key] = value
    return values


def from_file_values(data: Mapping[str, Any]) -> Config:
    """The Config that a JSON config file holding ``data`` gives on its own (no env, no flags).

    Used by the operator to check ``spec.gateway`` with the gateway's own rules before it writes
    that file into a ConfigMap. Raises ConfigError like ``load_config``.
    """
    with _use_layers({}, file_keys(data)):
        return Config()


# --- command-line flags -----------------------------------------------------------------------------

#: Value kinds of command-line flags.
_STR, _INT, _BOOL, _LIST = "str", "int", "bool", "list"


@dataclass(frozen=True)
class Flag:
    """One command-line flag. ``names`` are without dashes; Go style, ``-x`` and ``--x`` are equal."""

    names: tuple[str, ...]
    field: str | None  # Config field set by the flag; None for flags handled by the parser itself
    kind: str
    metavar: str
    help: str
    section: str


_S, _SEC, _LOG = "Server Options", "Security Options", "Logging Options"
_EXT, _COMMON = "pyresgate Extensions (not in resgate)", "Common Options"

#: Every flag of resgate 1.8.0, plus pyresgate's extensions, in ``--help`` order.
FLAGS: tuple[Flag, ...] = (
    Flag(("n", "nats"), "nats_url", _STR, "<url>", "NATS Server URL", _S),
    Flag(("i", "addr"), "addr", _STR, "<host>", "Bind to HOST address", _S),
    Flag(("p", "port"), "port", _INT, "<port>", "HTTP port for client connections", _S),
    Flag(("w", "wspath"), "ws_path", _STR, "<path>", "WebSocket path for clients", _S),
    Flag(("a", "apipath"), "api_path", _STR, "<path>", "Web resource path for clients", _S),
    Flag(
        ("r", "reqtimeout"),
        "request_timeout",
        _INT,
        "<milliseconds>",
        "Timeout duration for NATS requests",
        _S,
    ),
    Flag(("u", "headauth"), "header_auth", _STR, "<method>", "Resource method for header authentication", _S),
    Flag(
        ("t", "wsheadauth"),
        "ws_header_auth",
        _STR,
        "<method>",
        "Resource method for WebSocket header authentication",
        _S,
    ),
    Flag(
        ("m", "metricsport"),
        "metrics_port",
        _INT,
        "<port>",
        "HTTP port for OpenMetrics connections (0 = off)",
        _S,
    ),
    Flag(("apiencoding",), "api_encoding", _STR, "<type>", "Encoding for web resources: json, jsonflat", _S),
    Flag(("creds",), "nats_creds", _STR, "<file>", "NATS User Credentials file", _S),
    Flag(("natscert",), "nats_cert", _STR, "<file>", "NATS Client certificate file", _S),
    Flag(("natskey",), "nats_key", _STR, "<file>", "NATS Client certificate key file", _S),
    Flag(("natsrootca",), "nats_root_cas", _LIST, "<file>", "NATS Root CA file(s) (repeatable)", _S),
    Flag(
        ("alloworigin",),
        "allow_origin",
        _LIST,
        "<origin>",
        "Allowed origin: *, or <scheme>://<host>[:<port>] (repeatable)",
        _S,
    ),
    Flag(
        ("putmethod",), "put_method", _STR, "<methodName>", "Call method name mapped to HTTP PUT requests", _S
    ),
    Flag(
        ("deletemethod",),
        "delete_method",
        _STR,
        "<methodName>",
        "Call method name mapped to HTTP DELETE requests",
        _S,
    ),
    Flag(
        ("patchmethod",),
        "patch_method",
        _STR,
        "<methodName>",
        "Call method name mapped to HTTP PATCH requests",
        _S,
    ),
    Flag(("wscompression",), "ws_compression", _BOOL, "", "Enable WebSocket per message compression", _S),
    Flag(
        ("resetthrottle",),
        "reset_throttle",
        _INT,
        "<limit>",
        "Max parallel requests sent on a system reset",
        _S,
    ),
    Flag(
        ("referencethrottle",),
        "reference_throttle",
        _INT,
        "<limit>",
        "Max parallel requests when following references",
        _S,
    ),
    Flag(("tls",), "tls", _BOOL, "", "Enable TLS for HTTP", _SEC),
    Flag(("tlscert",), "cert_file", _STR, "<file>", "HTTP server certificate file", _SEC),
    Flag(("tlskey",), "key_file", _STR, "<file>", "Private key for HTTP server certificate", _SEC),
    Flag(("D", "debug"), "debug", _BOOL, "", "Enable debugging output", _LOG),
    Flag(("V", "trace"), "trace", _BOOL, "", "Enable trace logging", _LOG),
    Flag(("DV",), None, _BOOL, "", "Debug and trace", _LOG),
    Flag(
        ("adminport",), "admin_port", _INT, "<port>", "Admin port for health/readiness probes (0 = off)", _EXT
    ),
    Flag(
        ("cacheevictiondelay",),
        "cache_eviction_delay",
        _INT,
        "<milliseconds>",
        "How long an unused resource stays cached",
        _EXT,
    ),
    Flag(
        ("exitonnatsloss",),
        "exit_on_nats_loss",
        _BOOL,
        "",
        "Exit with code 1 when the NATS connection is lost",
        _EXT,
    ),
    Flag(
        ("workers",), "workers", _INT, "<n>", "Gateway processes sharing the client port (SO_REUSEPORT)", _EXT
    ),
    Flag(
        ("drainperiod",),
        "drain_period",
        _INT,
        "<milliseconds>",
        "Keep serving this long after SIGTERM while unready",
        _EXT,
    ),
    Flag(
        ("wscloserate",),
        "ws_close_rate",
        _INT,
        "<per second>",
        "WebSocket connections closed per second on shutdown (0 = all at once)",
        _EXT,
    ),
    Flag(
        ("shutdowntimeout",),
        "shutdown_timeout",
        _INT,
        "<milliseconds>",
        "Upper bound for a graceful shutdown",
        _EXT,
    ),
    Flag(
        ("tracing",),
        "tracing",
        _BOOL,
        "",
        "Enable OpenTelemetry tracing (configured by OTEL_* variables)",
        _EXT,
    ),
    Flag(
        ("clientoutboxlimit",),
        "client_outbox_limit",
        _INT,
        "<bytes>",
        "Output held for a client that does not read before it is disconnected",
        _EXT,
    ),
    Flag(
        ("wsmaxmessagesize",),
        "ws_max_message_size",
        _INT,
        "<bytes>",
        "Largest WebSocket message accepted from a client",
        _EXT,
    ),
    Flag(
        ("wsmaxsubscriptions",),
        "ws_max_subscriptions",
        _INT,
        "<n>",
        "Resources one WebSocket connection may subscribe",
        _EXT,
    ),
    Flag(
        ("wsmaxpendingrequests",),
        "ws_max_pending_requests",
        _INT,
        "<n>",
        "Unanswered requests one WebSocket connection may have",
        _EXT,
    ),
    Flag(
        ("c", "config"),
        None,
        _STR,
        "<file>",
        "Configuration file (created with the settings if missing)",
        _COMMON,
    ),
    Flag(("h", "help"), None, _BOOL, "", "Show this message", _COMMON),
    Flag(("v", "version"), None, _BOOL, "", "Show version", _COMMON),
)

_FLAGS_BY_NAME: dict[str, Flag] = {name: flag for flag in FLAGS for name in flag.names}

#: Flags whose empty value means "unset" (resgate: ``-u ""`` disables header auth).
_EMPTY_IS_UNSET = {"header_auth", "ws_header_auth", "put_method", "delete_method", "patch_method"}


@dataclass
class ParsedArgs:
    """Result of ``parse_args``: field values set by flags, and the parser's own flags."""

    values: dict[str, Any] = dc_field(default_factory=dict)
    config_file: str | None = None
    show_help: bool = False
    show_version: bool = False


def _parse_go_bool(text: str) -> bool:
    # The spellings Go's strconv.ParseBool accepts.
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError


def parse_args(argv: list[str]) -> ParsedArgs:
    """Parse command-line arguments the way Go's flag package does.

    ``-name`` and ``--name`` are the same flag; values follow as the next argument or after ``=``;
    boolean flags take a value only as ``-flag=false``. Parsing stops at ``--``. Raises ConfigError
    for unknown flags, missing or malformed values, and stray arguments.
    """
    result = ParsedArgs()
    lists: dict[str, list[str]] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            break
        if len(arg) < 2 or not arg.startswith("-"):
            raise ConfigError(f"unexpected argument {arg!r} (options start with -; see --help)")
        name = arg[2:] if arg.startswith("--") else arg[1:]
        if not name or name.startswith(("-", "=")):
            raise ConfigError(f"bad flag syntax: {arg}")
        name, has_value, value = name.partition("=")
        flag = _FLAGS_BY_NAME.get(name)
        if flag is None:
            raise ConfigError(f"flag provided but not defined: -{name} (see --help)")
        if flag.kind == _BOOL:
            if has_value:
                try:
                    enabled = _parse_go_bool(value)
                except ValueError:
                    raise ConfigError(f"invalid boolean value {value!r} for flag -{name}") from None
            else:
                enabled = True
            if name == "DV":
                result.values["debug"] = enabled
                result.values["trace"] = enabled
            elif flag.names[-1] == "help":
                result.show_help = enabled
            elif flag.names[-1] == "version":
                result.show_version = enabled
            else:
                assert flag.field is not None
                result.values[flag.field] = enabled
            continue
        if not has_value:
            if i >= len(argv):
                raise ConfigError(f"flag needs an argument: -{name}")
            value = argv[i]
            i += 1
        if flag.field is None:  # -c / --config
            result.config_file = value
        elif flag.kind == _INT:
            try:
                result.values[flag.field] = int(value, 10)
            except ValueError:
                raise ConfigError(f"invalid value {value!r} for flag -{name}: must be an integer") from None
        elif flag.kind == _LIST:
            lists.setdefault(flag.field, []).append(value)
        elif flag.field in _EMPTY_IS_UNSET and value == "":
            result.values[flag.field] = None
        else:
            result.values[flag.field] = value
    for field_name, items in lists.items():
        result.values[field_name] = ";".join(items) if field_name == "allow_origin" else items
    return result


def usage(prog: str = "pyresgate") -> str:
    """The ``--help`` text: every flag with its default."""
    lines = [f"Usage: {prog} [options]", ""]
    section = None
    for flag in FLAGS:
        if flag.section != section:
            section = flag.section
            if lines[-1] != "":
                lines.append("")
            lines.append(f"{section}:")
        short = [n for n in flag.names if len(n) <= 2]
        long = [n for n in flag.names if len(n) > 2]
        names = ", ".join([f"-{n}" for n in short] + [f"--{n}" for n in long])
        left = f"    {names} {flag.metavar}".rstrip()
        text = flag.help
        default = _flag_default(flag)
        if default is not None:
            text += f" (default: {default})"
        lines.append(f"{left:<37}{text}" if len(left) < 37 else f"{left}\n{'':<37}{text}")
    lines += [
        "",
        "A flag may be written -name or --name. Settings are read from (later wins): defaults,",
        f"the JSON config file (-c, or {CONFIG_FILE_ENV}), {ENV_PREFIX}<SETTING> environment variables",
        "(e.g. RESGATE_NATS_URL, RESGATE_API_ENCODING), then flags.",
        "",
    ]
    return "\n".join(lines)


def _flag_default(flag: Flag) -> str | None:
    if flag.field is None or flag.kind == _BOOL:
        return None
    default = Config.model_fields[flag.field].default
    if default is None or default == "" or default == []:
        return None
    return str(default)


# --- loading ----------------------------------------------------------------------------------------


def load_config(
    argv: list[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Build the effective Config: defaults < JSON file < ``RESGATE_*`` env < command-line flags.

    ``argv`` are command-line arguments without the program name (see ``parse_args``); ``env``
    defaults to ``os.environ``. The config file is ``-c``/``--config`` from argv, else the
    ``RESGATE_CONFIG`` variable. When that file does not exist it is created holding the effective
    settings (resgate behaviour). Raises ConfigError (one line) for any invalid setting.
    ``-h``/``-v`` are ignored here; ``gateway.cli`` handles them before loading.
    """
    return load_parsed(parse_args(argv or []), env)


def load_parsed(parsed: ParsedArgs, env: Mapping[str, str] | None = None) -> Config:
    """``load_config`` for arguments already parsed by ``parse_args``."""
    env = os.environ if env is None else env
    config_file = parsed.config_file
    if config_file is None:
        config_file = env.get(CONFIG_FILE_ENV) or None

    file_values: dict[str, Any] | None = None
    if config_file is not None:
        file_values = read_config_file(config_file)

    with _use_layers(env, file_values or {}):
        config = Config(**parsed.values)

    if config_file is not None and file_values is None:
        try:
            Path(config_file).write_text(config.to_json(), encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot create config file {config_file}: {exc.strerror or exc}") from None
        log.info("Created config file %s", config_file)
    return config
