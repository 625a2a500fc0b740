"""Versions, defaults, limits and timeouts, one comment each.

Imported by every layer; holds no logic. Values mirror resgate 1.8.0 unless a comment says otherwise.
"""

from typing import Final

#: Version of the resgate release whose behaviour pyresgate reproduces (printed by ``--version``).
RESGATE_VERSION: Final = "1.8.0"
#: RES protocol version the gateway speaks and reports in the ``version`` handshake.
PROTOCOL_VERSION: Final = "1.2.3"
#: Protocol version assumed for a WebSocket client that never sends ``version`` (legacy clients).
LEGACY_PROTOCOL: Final = 1_001_001
#: From 1.2.0 call/auth results are wrapped in ``payload`` and resource responses are subscribed.
PROTOCOL_RESOURCE_RESPONSE: Final = 1_002_000
#: From 1.2.1 soft references and data values are sent to clients unmodified.
PROTOCOL_SOFT_REFS: Final = 1_002_001
#: Integer form of PROTOCOL_VERSION, used for HTTP requests and header-auth calls.
PROTOCOL_LATEST: Final = 1_002_003

#: Direct subscriptions one connection may hold on one rid before system.subscriptionLimitExceeded.
MAX_DIRECT_SUBSCRIPTIONS: Final = 256
#: Seconds an unused resource stays cached before its event subscription is dropped (resgate: 5 s).
DEFAULT_CACHE_EVICTION_DELAY_MS: Final = 5000
#: NATS servers refuse a control line longer than this; longer subjects drop the whole connection.
NATS_MAX_CONTROL_LINE: Final = 4096
#: Room kept on a PUB control line for the operation name, spaces, the size field and CRLF.
NATS_CONTROL_LINE_OVERHEAD: Final = 0
#: Placeholder in rids replaced by the connection ID before talking to services.
CID_PLACEHOLDER: Final = "{cid}"

#: Default request timeout towards services, milliseconds.
DEFAULT_REQUEST_TIMEOUT_MS: Final = 3000
#: Default NATS URL (as resgate).
DEFAULT_NATS_URL: Final = "nats://127.0.0.1:4222"
#: Default client port (as resgate).
DEFAULT_PORT: Final = 8080

#: Bytes a WebSocket client may have queued in its transport before it is disconnected as a slow
#: consumer. Bounded so one stalled client cannot grow the gateway's memory without limit.
WS_MAX_OUTBOX_BYTES: Final = 32 * 1024 * 1024
#: Seconds given to WebSocket clients to close on shutdown, and to NATS to drain (resgate: 3 s).
WS_CLOSE_TIMEOUT: Final = 3.0
MQ_CLOSE_TIMEOUT: Final = 3.0
#: Longest HTTP request line or header field accepted (Go's net/http default: 1 MiB).
HTTP_MAX_HEADER_BYTES: Final = 1 << 20
#: Listen backlog of the client port. aiohttp's default (128) overflows when a thousand clients
#: reconnect at once (a gateway pod died): the kernel drops their SYNs and they retry after 1 s. Go's
#: listener (resgate) asks for the kernel's maximum; so do we (the kernel caps it at somaxconn).
LISTEN_BACKLOG: Final = 65535
#: Largest HTTP request body accepted (call parameters); larger bodies get 413.
HTTP_MAX_BODY_BYTES: Final = 64 * 1024 * 1024
