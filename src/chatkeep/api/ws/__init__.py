"""WS /v1/ws: events as they happen, resume without gaps, and writes over the socket.

The socket is served as plain ASGI, before the app's middleware and router (see api/app.py): a
WebSocket lives for hours, and every layer it passes through keeps a frame alive for as long, which
at thousands of connections is most of what an idle connection costs. Nothing in those layers applies
to a socket: the body limit and request metrics are for HTTP; the socket authenticates, rate-limits
and maps errors itself.
"""

from chatkeep.api.ws.connection import Connection

PATH = "/v1/ws"

__all__ = ["PATH", "Connection"]
