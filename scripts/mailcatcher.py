"""A real SMTP server that keeps what it receives, for local runs and tests.

Mail sent to 127.0.0.1:<smtp port> is accepted (250), kept in memory (the most recent
10,000 messages) and written as .eml files, and readable over HTTP:

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
import json
import os
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


class Api(BaseHTTPRequestHandler):
    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlparse(self.path)
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
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    controller = Controller(Catcher(args.dir), hostname="127.0.0.1", port=args.smtp_port)
    controller.start()
    api = ThreadingHTTPServer(("127.0.0.1", args.http_port), Api)
    print(f"mailcatcher: SMTP on 127.0.0.1:{args.smtp_port}, API on 127.0.0.1:{args.http_port}", flush=True)
    try:
        api.serve_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
