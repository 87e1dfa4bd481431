#!/usr/bin/env python3
"""hang_smtpd.py - an SMTP server that hangs, for test_smtp_hang.sh.

usage: hang_smtpd.py PORT LOG [--silent | --answer-ehlo]

Listens on 127.0.0.1:PORT. Each connection gets the greeting "220" and
then no reply to any command (with --silent: not even the greeting; with
--answer-ehlo: EHLO/HELO are answered 250, so the silence starts with
MAIL FROM, a command timeout inside a transaction); the connection stays
open until the client closes it or the process ends.
LOG gets "ready" once listening, then one line per connection ("conn")
and per command line received ("cmd EHLO x"), flushed at once, so a test
can wait for a client to be stuck in a given step.
"""
import socket
import sys
import threading


def serve(conn, silent, answer_ehlo, log, lock):
    with conn:
        if not silent:
            conn.sendall(b"220 hang.test ESMTP never answers\r\n")
        buf = b""
        while True:
            try:
                data = conn.recv(4096)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                with lock:
                    log.write("cmd " + line.decode("ascii", "replace").rstrip("\r") + "\n")
                    log.flush()
                if answer_ehlo and line[:4].upper() in (b"EHLO", b"HELO"):
                    conn.sendall(b"250 hang.test\r\n")


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    silent = "--silent" in sys.argv[3:]
    answer_ehlo = "--answer-ehlo" in sys.argv[3:]
    log, lock = open(path, "a", encoding="ascii"), threading.Lock()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(64)
    with lock:
        log.write("ready\n")
        log.flush()
    while True:
        conn, _ = srv.accept()
        with lock:
            log.write("conn\n")
            log.flush()
        threading.Thread(target=serve, args=(conn, silent, answer_ehlo, log, lock), daemon=True).start()


if __name__ == "__main__":
    main()
