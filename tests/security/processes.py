"""Services as real processes, for probes an in-process client cannot make: a client that
streams hundreds of MB, and the memory the service process reaches while refusing it."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from genomebus_devstack.procs import peak_rss_mb  # noqa: F401  (the tests read it from here)


@dataclass
class RawAnswer:
    status: int | None  # None: the server closed the connection without an answer we could read
    sent: int  # body bytes the server took before it answered or closed


def post_raw(url: str, path: str, headers: dict[str, str], body: Iterable[bytes]) -> RawAnswer:
    """POST ``body`` as a hostile client would: keep sending until the server answers or closes.

    A plain HTTP client would either send all of it first or give up on a broken pipe without
    the answer; this one looks for an answer between chunks."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=120)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {parts.hostname}\r\n{head}\r\n".encode())
    sent = 0
    try:
        for chunk in body:
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered early
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        answer = b""
        try:
            while b"\r\n" not in answer:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except (ConnectionResetError, TimeoutError):
            pass
    finally:
        sock.close()
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None
    return RawAnswer(status, sent)
