"""A minimal SMTP server on 127.0.0.1 that records every accepted message's Message-ID and can
stall at a chosen message, so a drill can kill the relay at a known point of a batch. While
``refusing`` is set it answers every connection ``421`` (an outage); with ``refuse_recipients``
it refuses every recipient for good (``550``, echoing the address as real servers do)."""

from __future__ import annotations

import socketserver
import threading
from collections import Counter
from email.parser import BytesParser


class SmtpSink:
    def __init__(self, stall_at_message: int | None = None) -> None:
        self.accepted: Counter[str] = Counter()
        self.stall_at_message = stall_at_message
        self.refusing = False
        self.refused_connections = 0
        self.refuse_recipients = False
        self.stalled = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._started_messages = 0
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                sink._converse(self.rfile, self.wfile)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def _converse(self, rfile, wfile) -> None:  # noqa: ANN001 - socket files
        def reply(line: str) -> None:
            wfile.write(line.encode() + b"\r\n")
            wfile.flush()

        if self.refusing:
            with self._lock:
                self.refused_connections += 1
            reply("421 sink unavailable, try again later")
            return
        reply("220 sink ESMTP")
        while True:
            line = rfile.readline()
            if not line:
                return
            command = line.decode(errors="replace").strip().upper()
            if command.startswith(("EHLO", "HELO")):
                reply("250 sink")
            elif command.startswith("MAIL FROM"):
                with self._lock:
                    self._started_messages += 1
                    number = self._started_messages
                if number == self.stall_at_message:
                    self.stalled.set()
                    self.release.wait(timeout=60)  # until the relay is killed, then the drill ends
                    return
                reply("250 ok")
            elif command.startswith("RCPT TO"):
                if self.refuse_recipients:
                    address = line.decode(errors="replace").strip()[len("RCPT TO:") :]
                    reply(f"550 5.1.1 {address}: no such user here")
                else:
                    reply("250 ok")
            elif command == "DATA":
                reply("354 go ahead")
                data = bytearray()
                while (chunk := rfile.readline()) not in (b".\r\n", b".\n", b""):
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                message_id = BytesParser().parsebytes(bytes(data))["Message-ID"] or ""
                with self._lock:
                    self.accepted[message_id.strip()] += 1
                reply("250 queued")
            elif command in ("RSET", "NOOP"):
                reply("250 ok")
            elif command == "QUIT":
                reply("221 bye")
                return
            else:
                reply("502 not implemented")
