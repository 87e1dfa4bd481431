#!/usr/bin/python3
"""slowclient.py - hostile HTTP clients for test_http_guard.sh, bounded in
connections and time, on loopback only.

  slowclient.py headers PORT SECONDS        one connection sending a header line
                                            every 0.5 s; prints the seconds until
                                            the server closed it (or SECONDS)
  slowclient.py body PORT SECONDS           headers at once, then one body byte
                                            every 0.5 s; same output
  slowclient.py flood PORT N SRC SECONDS    N connections from source address SRC
                                            that send half a request and wait;
                                            prints how many were still open after
                                            1 s, then holds them for SECONDS
  slowclient.py raw PORT                    the request on stdin (\\n -> CRLF),
                                            prints the status line's code
"""
import resource
import socket
import sys
import time


def connect(port, src=None):
    s = socket.socket()
    if src:
        s.bind((src, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def closed(s):
    """True when the server closed (EOF or reset) without blocking."""
    s.setblocking(False)
    try:
        return s.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.setblocking(True)


def drip(port, limit, head, drip_bytes):
    s = connect(port)
    s.sendall(head)
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < limit:
        time.sleep(0.5)
        if closed(s):
            break
        try:
            s.sendall(drip_bytes(i))
        except OSError:
            break
        i += 1
    print("%.1f" % (time.monotonic() - t0))


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "headers":
        drip(port, float(sys.argv[3]), b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n",
             lambda i: b"X-Slow-%d: 1\r\n" % i)
    elif mode == "body":
        head = (b"POST /register HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
        drip(port, float(sys.argv[3]), head, lambda i: b" ")
    elif mode == "flood":
        n, src, hold = int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 64)), hard))
        conns = []
        for _ in range(n):
            try:
                s = connect(port, src)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                conns.append(s)
            except OSError:
                pass
        time.sleep(1)
        print(sum(1 for s in conns if not closed(s)), flush=True)
        t0 = time.monotonic()
        while time.monotonic() - t0 < hold:
            time.sleep(0.5)
        for s in conns:
            s.close()
    elif mode == "raw":
        req = sys.stdin.buffer.read().replace(b"\n", b"\r\n")
        s = connect(port)
        s.sendall(req)
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        line = data.split(b"\r\n", 1)[0].split()
        print(line[1].decode() if len(line) > 1 else "closed")
    else:
        sys.exit("unknown mode")


main()
