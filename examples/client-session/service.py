"""Client Session example: sessions that survive page reloads and gateway restarts.

Port of resgate's examples/client-session. ``session.login`` (username/password) creates a session and
returns a one-time ``reloginKey``; ``session.relogin`` resumes it from a new connection and issues a
new key; ``session.logout`` ends it. ``session.user.{cid}`` is the connection's own user model (only
that connection may read it), and ``ticker.model`` needs a token with a role. Users: admin/admin,
guest/guest, jane/jane, john/john. Sessions live in memory and expire 2 minutes after the last key.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from example_support import parse_args, run_services, tick_every_second

from pyresgate.service import AccessRequest, AuthRequest, GetRequest, ResError, Service

HTTP_PORT = 8086
#: Relogin keys expire after 2 minutes (the client renews every minute).
EXPIRE_SECONDS = 120.0

USERS: dict[str, dict[str, Any]] = {
    "admin": {"id": 1, "name": "Administrator", "role": "admin", "password": "admin"},
    "guest": {"id": 2, "name": "Guest", "role": "guest", "password": "guest"},
    "jane": {"id": 3, "name": "Jane Doe", "role": "user", "password": "jane"},
    "john": {"id": 4, "name": "John Doe", "role": "user", "password": "john"},
}
NO_USER = {"id": None, "name": None, "role": None}
ERR_INVALID_PARAMS = ResError("system.invalidParams", "Invalid parameters")


@dataclass
class Session:
    sid: str
    user: dict[str, Any]
    cid: str = ""
    keys: list[str] = field(default_factory=list)
    expire: asyncio.TimerHandle | None = None


def public(user: dict[str, Any]) -> dict[str, Any]:
    return {"id": user["id"], "name": user["name"], "role": user["role"]}


class Sessions:
    def __init__(self, expire_seconds: float = EXPIRE_SECONDS) -> None:
        self.expire_seconds = expire_seconds
        self.by_key: dict[str, Session] = {}
        self.by_sid: dict[str, Session] = {}
        self.by_cid: dict[str, Session] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.svc = Service("session")
        self.svc.handle("", auth={"login": self.login, "relogin": self.relogin, "logout": self.logout})
        self.svc.handle("user.$cid", access=self.user_access, get_model=self.get_user)

    async def set_session_cid(self, session: Session, new_cid: str) -> None:
        """Move the session to connection ``new_cid``: clear the old one's token, set the new one's."""
        if session.cid:
            await self.svc.token_event(session.cid, None)
            self.by_cid.pop(session.cid, None)
        session.cid = new_cid
        self.by_cid[new_cid] = session
        token = {"sid": session.sid, "userId": session.user["id"], "role": session.user["role"]}
        await self.svc.token_event(new_cid, token)
        await self.svc.resource(f"session.user.{new_cid}").change_event(public(session.user))

    def issue_relogin_key(self, session: Session) -> str:
        if session.expire is not None:
            session.expire.cancel()
        session.expire = asyncio.get_running_loop().call_later(self.expire_seconds, self._expire, session)
        key = secrets.token_urlsafe(24)
        session.keys.append(key)
        self.by_key[key] = session
        return key

    def _expire(self, session: Session) -> None:
        task = asyncio.get_running_loop().create_task(self.dispose(session))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def dispose(self, session: Session) -> None:
        if session.expire is not None:
            session.expire.cancel()
        if session.cid:
            await self.svc.resource(f"session.user.{session.cid}").change_event(NO_USER)
            await self.svc.token_event(session.cid, None)
        for key in session.keys:
            self.by_key.pop(key, None)
        self.by_cid.pop(session.cid, None)
        self.by_sid.pop(session.sid, None)

    async def login(self, r: AuthRequest) -> dict[str, str]:
        if r.token:
            raise ResError("session.alreadyLoggedIn", "Already logged in")
        params = r.params if isinstance(r.params, dict) else None
        if (
            not params
            or not isinstance(params.get("username"), str)
            or not isinstance(params.get("password"), str)
        ):
            raise ERR_INVALID_PARAMS
        user = USERS.get(params["username"].lower())
        if user is None or user["password"] != params["password"]:
            raise ResError("session.wrongUsernamePassword", "Wrong username or password")
        session = Session(sid=secrets.token_urlsafe(24), user=user)
        self.by_sid[session.sid] = session
        await self.set_session_cid(session, r.cid)
        return {"reloginKey": self.issue_relogin_key(session)}

    async def relogin(self, r: AuthRequest) -> dict[str, str]:
        key = r.params.get("reloginKey") if isinstance(r.params, dict) else None
        if not isinstance(key, str):
            raise ERR_INVALID_PARAMS
        session = self.by_key.get(key)
        if session is None or session.keys[-1] != key:
            if session is not None:
                # Used twice: the key may have been stolen. End the whole session to be safe.
                await self.dispose(session)
            raise ResError("session.invalidReloginKey", "Invalid relogin key")
        if session.cid != r.cid:
            await self.set_session_cid(session, r.cid)
        return {"reloginKey": self.issue_relogin_key(session)}

    async def logout(self, r: AuthRequest) -> None:
        session = self.by_cid.get(r.cid)
        if session is not None:
            await self.dispose(session)

    async def user_access(self, r: AccessRequest) -> None:
        await r.access(get=r.cid == r.path_param("cid"))

    def get_user(self, r: GetRequest) -> dict[str, Any]:
        session = self.by_cid.get(r.path_param("cid"))
        return public(session.user) if session is not None else dict(NO_USER)


def ticker_service(model: dict[str, Any]) -> Service:
    svc = Service("ticker")

    async def access(r: AccessRequest) -> None:
        token = r.token if isinstance(r.token, dict) else {}
        await r.access(get=bool(token.get("role")))

    def get(r: GetRequest) -> dict[str, Any]:
        return model

    svc.handle("model", access=access, get_model=get)
    return svc


def main() -> None:
    args = parse_args("Client Session example services", HTTP_PORT)
    model = {"seconds": 0}
    ticker = ticker_service(model)
    asyncio.run(
        run_services(
            args,
            [Sessions().svc, ticker],
            Path(__file__).parent,
            background=[lambda: tick_every_second(ticker, "ticker.model", model)],
        )
    )


if __name__ == "__main__":
    main()
