"""A real SMTP server that keeps what it receives, for local runs and tests.

Mail sent to <host>:<smtp port> (--host, default 127.0.0.1) is accepted (250), kept in
memory (the most recent 10,000 messages) and written as .eml files, and readable over HTTP
on the same host:

    GET    /                    an HTML page for people: the messages, newest first
    GET    /messages            every message, oldest first, as JSON
    GET    /messages?to=ADDR    those addressed to ADDR
    DELETE /messages            forget them all
    GET    /health              200 once the server is up

Recipients at the domain `bounce.invalid` are refused with a permanent 550, so that clients
can be tested against a permanent failure.
"""

import argparse
import email
import email.policy
import html
import json
import os
import signal
import sys
import threading
import time
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from aiosmtpd.controller import Controller

BOUNCE_DOMAIN = "@bounce.invalid"
messages = deque(maxlen=10_000)
lock = threading.Lock()


class Catcher:
    def __init__(self, directory):
        self.directory = directory

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().endswith(BOUNCE_DOMAIN):
            return "550 5.1.1 mailbox does not exist (bounce.invalid refuses all mail)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = parsed.get_body(preferencelist=("plain",))
        html = parsed.get_body(preferencelist=("html",))
        message = {
            "id": str(uuid.uuid4()),
            "received_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "from": envelope.mail_from,
            "to": list(envelope.rcpt_tos),
            "message_id": parsed.get("Message-ID", ""),
            "subject": parsed.get("Subject", ""),
            "text": text.get_content() if text is not None else "",
            "html": html.get_content() if html is not None else "",
        }
        with lock:
            messages.append(message)
        path = os.path.join(self.directory, message["id"] + ".eml")
        with open(path, "wb") as file:
            file.write(envelope.content)
        return "250 Message accepted for delivery"


def render_page(found):
    """The messages as an HTML page, newest first; every value is HTML-escaped."""
    esc = html.escape
    rows = []
    for m in reversed(found):
        rows.append(
            "<article>"
            f"<h2>{esc(m['subject']) or '<em>(no subject)</em>'}</h2>"
            "<dl>"
            f"<dt>Date</dt><dd>{esc(m['received_at'])}</dd>"
            f"<dt>From</dt><dd>{esc(m['from'])}</dd>"
            f"<dt>To</dt><dd>{esc(', '.join(m['to']))}</dd>"
            "</dl>"
            f"<pre>{esc(m['text'])}</pre>"
            "</article>"
        )
    body = "\n".join(rows) or "<p>No messages yet.</p>"
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Mail catcher</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:60em}"
        "article{border-top:1px solid #ccc;padding:.5em 0}h2{font-size:1.1em;margin:.3em 0}"
        "dl{display:grid;grid-template-columns:5em auto;margin:0}dt{color:#666}dd{margin:0}"
        "pre{white-space:pre-wrap;background:#f6f6f6;padding:.5em}</style></head><body>"
        f"<h1>Mail catcher: {len(found)} message{'' if len(found) == 1 else 's'}</h1>"
        "<p>Newest first. JSON: <a href=\"/messages\">/messages</a></p>\n"
        f"{body}\n</body></html>\n"
    )


class Api(BaseHTTPRequestHandler):
    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_html(self, page):
        data = page.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/":
            with lock:
                found = list(messages)
            return self._send_html(render_page(found))
        if url.path == "/health":
            return self._send(200, {"status": "up"})
        if url.path != "/messages":
            return self._send(404, {"error": "not found"})
        wanted = [to.lower() for to in parse_qs(url.query).get("to", [])]
        with lock:
            found = [
                m for m in messages
                if not wanted or any(to.lower() in wanted for to in m["to"])
            ]
        return self._send(200, found)

    def do_DELETE(self):
        if urlparse(self.path).path != "/messages":
            return self._send(404, {"error": "not found"})
        with lock:
            messages.clear()
        return self._send(200, {"deleted": True})

    def log_message(self, *args):
        pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1",
                        help="address for both SMTP and HTTP (default 127.0.0.1; 0.0.0.0 in a container)")
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    controller = Controller(Catcher(args.dir), hostname=args.host, port=args.smtp_port)
    controller.start()
    api = ThreadingHTTPServer((args.host, args.http_port), Api)
    print(f"mailcatcher: SMTP on {args.host}:{args.smtp_port}, API on {args.host}:{args.http_port}", flush=True)
    # SIGTERM stops it cleanly, also as a container's PID 1 (which has no default handler).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        api.serve_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
