#!/usr/bin/env python3
"""kafka_sasl_peer.py - the front door of a Kafka broker, for test_secrets.sh:
answers ApiVersions, SaslHandshake and SaslAuthenticate (SASL/PLAIN) on
127.0.0.1, optionally inside TLS, and records what each client sent. It
shows that a service's KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_* and
KAFKA_CA_FILE settings reach librdkafka and go on the wire (librdkafka's
mock cluster, our dev broker, speaks neither SASL nor TLS). Any other
request closes the connection: no broker lies behind the door.

usage: kafka_sasl_peer.py PORT_FILE RESULT_FILE USER PASSWORD_FILE [CERT KEY]

One line per authentication goes to RESULT_FILE:
  "mechanism=PLAIN user=<user> password=ok|wrong tls=0|1"
and "tls_error=<reason>" per failed TLS handshake. The password is read
from a file (not argv) and never written anywhere.
"""
import os
import socketserver
import ssl
import struct
import sys
import threading

port_file, result_file, want_user, pw_file = sys.argv[1:5]
tls_files = sys.argv[5:7] if len(sys.argv) >= 7 else None
with open(pw_file, "rb") as f:
    want_pw = f.read().rstrip(b"\r\n")
lock = threading.Lock()


def record(line):
    with lock, open(result_file, "a") as f:
        f.write(line + "\n")


API_VERSIONS = [(18, 0, 3), (17, 0, 1), (36, 0, 1), (3, 0, 4)]


def uvarint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def api_versions(ver):
    if ver >= 3:  # flexible: compact array, tagged fields
        body = struct.pack(">h", 0) + uvarint(len(API_VERSIONS) + 1)
        for k, lo, hi in API_VERSIONS:
            body += struct.pack(">hhh", k, lo, hi) + uvarint(0)
        return body + struct.pack(">i", 0) + uvarint(0)
    body = struct.pack(">hi", 0, len(API_VERSIONS))
    for k, lo, hi in API_VERSIONS:
        body += struct.pack(">hhh", k, lo, hi)
    return body + (struct.pack(">i", 0) if ver >= 1 else b"")


class Handler(socketserver.BaseRequestHandler):
    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.conn.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def reply(self, corr, body):
        msg = struct.pack(">i", corr) + body
        self.conn.sendall(struct.pack(">i", len(msg)) + msg)

    def handle(self):
        self.conn = self.request
        tls = 0
        if tls_files:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls_files)
            try:
                self.conn = ctx.wrap_socket(self.request, server_side=True)
            except (ssl.SSLError, OSError) as e:
                record("tls_error=" + type(e).__name__)
                return
            tls = 1
        mechanism = None
        try:
            while True:
                (size,) = struct.unpack(">i", self.recv_exact(4))
                req = self.recv_exact(size)
                key, ver, corr, cid_len = struct.unpack(">hhih", req[:10])
                body = req[10 + max(cid_len, 0):]
                if key == 18:
                    self.reply(corr, api_versions(ver))
                elif key == 17:
                    (n,) = struct.unpack(">h", body[:2])
                    mechanism = body[2:2 + n].decode()
                    err = 0 if mechanism == "PLAIN" else 33
                    self.reply(corr, struct.pack(">hih", err, 1, 5) + b"PLAIN")
                elif key == 36:
                    (n,) = struct.unpack(">i", body[:4])
                    parts = body[4:4 + n].split(b"\0")
                    user = parts[1].decode() if len(parts) == 3 else "?"
                    good = len(parts) == 3 and user == want_user and parts[2] == want_pw
                    record(f"mechanism={mechanism} user={user} "
                           f"password={'ok' if good else 'wrong'} tls={tls}")
                    out = struct.pack(">hhi", 0 if good else 58, -1, 0)
                    self.reply(corr, out + (struct.pack(">q", 0) if ver >= 1 else b""))
                else:
                    return
        except (EOFError, OSError, struct.error):
            return


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


srv = Server(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(port_file + ".tmp", port_file)
srv.serve_forever()
