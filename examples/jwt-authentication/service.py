"""JWT Authentication example: ``/login`` sets a JWT cookie, ``auth.jwtHeader`` reads it from the
WebSocket upgrade headers and turns it into the connection token, and ``example.model`` (editable like
the Edit Text example) is only accessible with that token.

Port of resgate's examples/jwt-authentication: the same cookie (``access-token``), secret (``shhhhh``),
claims (``{"foo": "bar"}``) and error messages. The JWT is HS256, made and checked with the standard
library. ``python examples/run.py jwt-authentication`` also starts the gateway with
``--headauth auth.jwtHeader`` so the model is reachable over REST with the cookie too.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import sys
import time
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from example_support import parse_args, run_services

from pyresgate.service import AccessRequest, AuthRequest, CallRequest, GetRequest, ResError, Service

HTTP_PORT = 8084
MY_SECRET = b"shhhhh"
JWT_COOKIE_NAME = "access-token"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_sign(claims: dict[str, Any], secret: bytes = MY_SECRET) -> str:
    """An HS256 JWT with ``iat`` added, as jsonwebtoken's ``sign`` makes it."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64(json.dumps({**claims, "iat": int(time.time())}, separators=(",", ":")).encode())
    signature = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"


def jwt_verify(token: str, secret: bytes = MY_SECRET) -> dict[str, Any]:
    """The claims of a valid HS256 JWT (signature and ``exp`` checked); ``ValueError``/``TypeError`` otherwise."""
    try:
        header_b64, body_b64, sig_b64 = token.split(".")
        header = json.loads(_unb64(header_b64))
        expected = hmac.new(secret, f"{header_b64}.{body_b64}".encode(), hashlib.sha256).digest()
        if header.get("alg") != "HS256" or not hmac.compare_digest(expected, _unb64(sig_b64)):
            raise ValueError("bad signature")
        claims = json.loads(_unb64(body_b64))
    except (ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"invalid jwt: {exc}") from None
    if not isinstance(claims, dict):
        raise TypeError("invalid jwt: claims are not an object")
    if isinstance(claims.get("exp"), int | float) and claims["exp"] < time.time():
        raise ValueError("jwt expired")
    return claims


def auth_service() -> Service:
    svc = Service("auth")

    async def jwt_header(r: AuthRequest) -> None:
        cookie = SimpleCookie()
        raw = r.header_value("Cookie")
        try:
            if raw:
                cookie.load(raw)
        except CookieError:
            pass
        morsel = cookie.get(JWT_COOKIE_NAME)
        if morsel is None or not morsel.value:
            await r.error(ResError("system.invalidParams", "Invalid params: missing jwt token"))
            return
        try:
            claims = jwt_verify(morsel.value)
        except (ValueError, TypeError):
            await r.error(ResError("system.invalidParams", "Invalid params: invalid jwt token"))
            return
        # Stored by the gateway, never sent to the client, passed on with later requests.
        await r.token_event(claims)
        await r.ok()

    svc.handle("", auth={"jwtHeader": jwt_header})
    return svc


def example_service() -> Service:
    svc = Service("example")
    model: dict[str, Any] = {"message": "Hello, secure World!"}

    async def access(r: AccessRequest) -> None:
        token = r.token if isinstance(r.token, dict) else {}
        if token.get("foo") == "bar":
            await r.access(get=True, call="set")
        else:
            await r.access(get=False)

    def get(r: GetRequest) -> dict[str, Any]:
        return model

    async def set_message(r: CallRequest) -> None:
        message = r.params.get("message") if isinstance(r.params, dict) else None
        if isinstance(message, str) and message != model["message"]:
            model["message"] = message
            await r.change_event({"message": message})
        await r.ok()

    svc.handle("model", access=access, get_model=get, call={"set": set_message})
    return svc


async def login(request: web.Request) -> web.Response:
    resp = web.Response(
        text='The access-token cookie is now set. <a href="/">Go back</a>', content_type="text/html"
    )
    resp.set_cookie(JWT_COOKIE_NAME, jwt_sign({"foo": "bar"}), path="/")
    return resp


async def logout(request: web.Request) -> web.Response:
    resp = web.Response(
        text='The access-token cookie is now cleared. <a href="/">Go back</a>', content_type="text/html"
    )
    resp.del_cookie(JWT_COOKIE_NAME, path="/")
    return resp


def main() -> None:
    args = parse_args("JWT Authentication example services", HTTP_PORT)
    routes = [web.get("/login", login), web.get("/logout", logout)]
    asyncio.run(run_services(args, [auth_service(), example_service()], Path(__file__).parent, routes=routes))


if __name__ == "__main__":
    main()
