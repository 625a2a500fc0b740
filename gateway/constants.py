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

#: Bytes of output a client may leave unread before it is disconnected as a slow consumer
#: (``clientOutboxLimit``; pyresgate extension). 1 MiB, as Centrifugo's client queue: a thousand
#: ~1 KB events, far more than a client that reads at all falls behind by, and 10,000 stalled
#: clients still cost at most ~10 GiB. Bounded so one stalled client cannot exhaust the gateway.
DEFAULT_CLIENT_OUTBOX_LIMIT: Final = 1024 * 1024
#: Smallest accepted ``clientOutboxLimit`` (below it ordinary responses would trip it).
MIN_CLIENT_OUTBOX_LIMIT: Final = 4096
#: The sinks' bound when they are built without a config (tests, tools): the default.
WS_MAX_OUTBOX_BYTES: Final = DEFAULT_CLIENT_OUTBOX_LIMIT
#: Seconds a slow consumer gets to take the close frame before its connection is aborted.
SLOW_CONSUMER_CLOSE_GRACE: Final = 1.0
#: Largest WebSocket message a client may send (``wsMaxMessageSize``). resgate sets no limit; 4 MiB
#: is four times NATS' default max payload (a larger request cannot reach a service anyway) and
#: bounds what one client message makes the gateway buffer.
DEFAULT_WS_MAX_MESSAGE_SIZE: Final = 4 * 1024 * 1024
#: Smallest accepted ``wsMaxMessageSize``.
MIN_WS_MAX_MESSAGE_SIZE: Final = 1024
#: Resources one WebSocket connection may subscribe directly (``wsMaxSubscriptions``). resgate has
#: no such limit (only MAX_DIRECT_SUBSCRIPTIONS per rid); 10,000 is far above what client
#: libraries hold (ResClient re-subscribes all of them at once after a reconnect).
DEFAULT_WS_MAX_SUBSCRIPTIONS: Final = 10_000
#: Unanswered requests one WebSocket connection may have (``wsMaxPendingRequests``). resgate has no
#: such limit; a pending request costs the gateway about 1-2 KB, so this bounds it to ~10 MB.
DEFAULT_WS_MAX_PENDING_REQUESTS: Final = 10_000
#: Seconds between start-up attempts to reach NATS: the first wait, doubled up to the last.
NATS_RETRY_FIRST: Final = 0.25
NATS_RETRY_MAX: Final = 2.0
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

#: Log level of trace lines (client and NATS messages, ``-V``), below DEBUG.
LOG_TRACE = 5
