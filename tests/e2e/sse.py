"""A Server-Sent Events reader for the stream tests, parsing what a browser's EventSource parses:
`id`, `event` and `data` fields, blank-line-terminated messages, `:` comments."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx


@dataclass
class Message:
    id: str | None
    event: str
    data: str

    def entry(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.data)
        return parsed


@dataclass
class StreamReader:
    """Reads one open stream; `last_id` follows the ids like EventSource's lastEventId."""

    response: httpx.Response
    last_id: str | None = None
    lines: AsyncIterator[str] | None = None
    fields: dict[str, str] = field(default_factory=dict)
    pending: list[Message] = field(default_factory=list)

    async def next_raw(self) -> Message:
        """The next complete message, including id-only ones (data '')."""
        if self.lines is None:
            self.lines = self.response.aiter_lines()
        async for line in self.lines:
            message = self._feed(line)
            if message is not None:
                return message
        raise EOFError("the stream ended")

    async def next_message(self) -> Message:
        """The next dispatched message (with data); id-only messages only move `last_id`."""
        if self.pending:
            return self.pending.pop(0)
        while True:
            message = await self.next_raw()
            if message.data:
                return message

    async def ready(self, timeout_s: float = 30.0) -> None:
        """Wait for the id-only message that says the stream is live; keeps what came before."""

        async def read() -> None:
            while True:
                message = await self.next_raw()
                if not message.data:
                    return
                self.pending.append(message)

        await asyncio.wait_for(read(), timeout_s)

    def _feed(self, line: str) -> Message | None:
        if line.startswith(":"):
            return None
        if line:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data" and "data" in self.fields:
                value = self.fields["data"] + "\n" + value
            self.fields[name] = value
            return None
        fields, self.fields = self.fields, {}
        if "id" in fields:
            self.last_id = fields["id"]
        if "id" not in fields and "data" not in fields:
            return None  # retry: and the like
        return Message(fields.get("id"), fields.get("event", "message"), fields.get("data", ""))

    async def touchpoints(self, count: int, timeout_s: float) -> list[Message]:
        """The next `count` touchpoint messages, failing after `timeout_s`."""

        async def read() -> list[Message]:
            found: list[Message] = []
            while len(found) < count:
                message = await self.next_message()
                if message.event == "touchpoint":
                    found.append(message)
            return found

        return await asyncio.wait_for(read(), timeout_s)

    async def quiet_for(self, seconds: float) -> list[Message]:
        """Touchpoint messages arriving within `seconds` (expected: none)."""
        found: list[Message] = []
        try:
            async with asyncio.timeout(seconds):
                while True:
                    message = await self.next_message()
                    if message.event == "touchpoint":
                        found.append(message)
        except TimeoutError:
            pass
        return found


def stream_path(customer_id: str) -> str:
    return f"/v1/customers/{quote(customer_id, safe='')}/stream"


def stream_request(
    client: httpx.AsyncClient, key: str, customer_id: str, last_id: str | None = None
) -> httpx.Request:
    headers = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream"}
    if last_id is not None:
        headers["Last-Event-ID"] = last_id
    return client.build_request("GET", stream_path(customer_id), headers=headers)


async def open_stream(
    client: httpx.AsyncClient, key: str, customer_id: str, last_id: str | None = None
) -> StreamReader:
    """Open a stream and wait until it is live (catch-up messages are kept for reading)."""
    response = await client.send(stream_request(client, key, customer_id, last_id), stream=True)
    if response.status_code != 200:
        body = (await response.aread()).decode()
        await response.aclose()
        raise AssertionError(f"{response.status_code}: {body}")
    reader = StreamReader(response, last_id)
    await reader.ready()
    return reader
