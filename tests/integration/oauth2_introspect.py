#!/usr/bin/env python3
"""oauth2_introspect.py - an OAuth2 token introspection endpoint (RFC 7662)
on loopback for Dovecot's passdb oauth2 in the integration tests.

    oauth2_introspect.py PORTFILE TOKENS

Listens on 127.0.0.1 on a free port and writes the port to PORTFILE once
it serves. TOKENS holds one "TOKEN USER" pair a line and is read at every
request, so a test expires a token or issues a fresh one by rewriting the
file. Takes the token as Dovecot sends it: POST form token=..., GET
?token=..., or an Authorization: Bearer header. A known token answers
200 {"active": true, "username": USER}; any other {"active": false}.
Logs one line per request to stderr, the token never (only its length).
Stops on SIGTERM.
"""
import json
import os
import signal
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer


def tokens(path):
    """the file's TOKEN -> USER pairs (missing file: none)"""
    out = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2:
                    out[parts[0]] = parts[1]
    except FileNotFoundError:
        pass
    return out


class Handler(BaseHTTPRequestHandler):
    tokens_path = ""

    def answer(self, token):
        user = tokens(self.tokens_path).get(token) if token else None
        body = {"active": True, "username": user} if user else {"active": False}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        sys.stderr.write(
            "introspect %s token_len=%d active=%s\n"
            % (self.command, len(token or ""), "true" if user else "false")
        )
        sys.stderr.flush()

    def bearer(self):
        auth = self.headers.get("Authorization", "")
        return auth[7:].strip() if auth.lower().startswith("bearer ") else None

    def do_GET(self):
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        self.answer((q.get("token") or [None])[0] or self.bearer())

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(n).decode("utf-8", "replace"))
        self.answer((form.get("token") or [None])[0] or self.bearer())

    def log_message(self, fmt, *args):
        pass  # the request line may carry the token (GET): answer() logs


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: oauth2_introspect.py PORTFILE TOKENS")
    Handler.tokens_path = sys.argv[2]
    srv = HTTPServer(("127.0.0.1", 0), Handler)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    tmp = sys.argv[1] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, sys.argv[1])
    srv.serve_forever()


if __name__ == "__main__":
    main()
