#!/usr/bin/env python3
"""RustyDB from Python with the `websockets` package (Debian: python3-websockets).

Logs in over HTTP, then over ws://…/api/v1/stream: authenticates, runs a query, streams a large
result chunk by chunk, subscribes to a table, disconnects, and resumes the subscription from the
last sequence it saw: the changes made while it was away arrive, none missing, none twice.

    python3 examples/python/client.py [URL] [USER] [PASSWORD]
    (or RUSTYDB_URL, RUSTYDB_USER, RUSTYDB_PASSWORD)
"""
import asyncio
import itertools
import json
import os
import sys
import urllib.request

import websockets

STREAM_PATH = "/api/v1/stream"


def http_json(base, path, body, token=None):
    """POSTs JSON to the HTTP API and returns the envelope's `data` (raises on an error answer)."""
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            envelope = json.load(response)
    except urllib.error.HTTPError as failure:
        envelope = json.load(failure)
    if not envelope.get("success"):
        error = envelope.get("error", {})
        raise RuntimeError(f"{path}: {error.get('code')}: {error.get('message')}")
    return envelope["data"]


class Session:
    """One WebSocket connection: sends requests with ids and hands each answer to whoever waits for it."""

    def __init__(self, ws):
        self.ws = ws
        self.ids = itertools.count(1)
        self.queues = {}
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self):
        async for text in self.ws:
            message = json.loads(text)
            queue = self.queues.get(message.get("id"))
            if queue is not None:
                queue.put_nowait(message)

    async def send(self, kind, payload, id=None):
        id = id or f"py-{next(self.ids)}"
        self.queues.setdefault(id, asyncio.Queue())
        await self.ws.send(json.dumps({"type": kind, "id": id, "payload": payload}))
        return id

    async def next(self, id, timeout=10):
        message = await asyncio.wait_for(self.queues[id].get(), timeout)
        if message["type"] in ("error", "auth_error"):
            payload = message["payload"]
            raise RuntimeError(f"{payload['code']}: {payload['message']}")
        return message

    async def authenticate(self, token):
        answer = await self.next(await self.send("auth", {"token": token}))
        return answer["payload"]

    async def query(self, sql, params=(), chunk_size=None):
        """Yields the result's chunks as they arrive."""
        payload = {"sql": sql, "params": list(params)}
        if chunk_size:
            payload["chunk_size"] = chunk_size
        id = await self.send("query", payload)
        while True:
            chunk = (await self.next(id))["payload"]
            yield chunk
            if not chunk["has_more"]:
                del self.queues[id]
                return

    async def run(self, sql, params=()):
        rows = []
        async for chunk in self.query(sql, params):
            rows.extend(chunk["rows"])
        return rows

    async def close(self):
        await self.ws.close()
        self.reader.cancel()


async def connect(ws_url, token):
    ws = await websockets.connect(ws_url)
    session = Session(ws)
    return session, await session.authenticate(token)


async def main(base, user, password):
    base = base.rstrip("/")
    ws_url = ("wss" if base.startswith("https") else "ws") + base[base.index(":"):] + STREAM_PATH
    token = http_json(base, "/api/v1/auth/login", {"username": user, "password": password})["token"]

    session, hello = await connect(ws_url, token)
    print(f"login: connected as {hello['user']} (rate limit {hello['limits']['rate_limit_rps']}/s)")

    await session.run("CREATE TABLE IF NOT EXISTS example_notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    [[answer, greeting]] = await session.run("SELECT 6 * 7, ?", ["hello"])
    print(f"query: answer={answer} greeting={greeting}")

    rows = chunks = 0
    async for chunk in session.query(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000) SELECT x FROM c",
        chunk_size=1000,
    ):
        rows += len(chunk["rows"])
        chunks += 1
    print(f"stream: {rows} rows in {chunks} chunks")

    sub = await session.send("subscribe", {"table": "example_notes"}, id="notes")
    last = (await session.next(sub))["payload"]["sequence"]
    await session.run("INSERT INTO example_notes (body) VALUES (?)", ["first"])
    change = (await session.next(sub))["payload"]
    last = change["sequence"]
    print(f"subscribe: #{change['sequence']} {change['op']} {json.dumps(change['row'])}")
    await session.close()

    # Changes made while disconnected.
    for body in ("second", "third"):
        http_json(base, "/api/v1/query", {"sql": "INSERT INTO example_notes (body) VALUES (?)", "params": [body]}, token)

    session, _ = await connect(ws_url, token)
    sub = await session.send("subscribe", {"table": "example_notes", "since": last}, id="notes")
    ack = await session.next(sub)
    if ack["type"] == "reset":
        print("resume: the server no longer has that history; re-subscribe with snapshot: true")
        return 1
    missed = [(await session.next(sub))["payload"] for _ in range(2)]
    sequences = [m["sequence"] for m in missed]
    in_order = sequences == sorted(set(sequences)) and sequences[0] > last
    bodies = [m["row"]["body"] for m in missed]
    print(f"resume: after #{last} got {json.dumps(bodies)}{', in order, nothing missed' if in_order else ''}")
    await session.close()
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    url = args[0] if len(args) > 0 else os.environ.get("RUSTYDB_URL", "http://127.0.0.1:8080")
    user = args[1] if len(args) > 1 else os.environ.get("RUSTYDB_USER", "admin")
    password = args[2] if len(args) > 2 else os.environ.get("RUSTYDB_PASSWORD")
    if not password:
        sys.exit("give the password as the third argument or in RUSTYDB_PASSWORD")
    sys.exit(asyncio.run(main(url, user, password)))
