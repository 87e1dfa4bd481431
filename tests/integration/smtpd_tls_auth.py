#!/usr/bin/python3
"""Test SMTP server for tests/integration/test_smtp.sh (aiosmtpd).

STARTTLS required + AUTH PLAIN/LOGIN required by default; --implicit-tls
for port-465 style (TLS from the first byte). Each message is saved as a
.eml file in --outdir and logged to OUTDIR/log.jsonl with the envelope,
whether it came over TLS and the authenticated user; connections, TLS
handshakes (with the SNI name the client sent) and AUTH attempts are
logged too. Run with Debian's python (aiosmtpd comes from python3-aiosmtpd):

  /usr/bin/python3 smtpd_tls_auth.py --port 2587 --cert server.pem --key server.key \
      --user seed1@gmail.test:password --outdir ./mail --ready-file F

Writes its pid to --ready-file when listening; SIGTERM stops it.
Misbehaviour on demand, to test the client:
  --pipelining            advertise PIPELINING (aiosmtpd reads commands in order)
  --idle-timeout S        close a connection idle for S seconds
  --drop-mail-after N     after N messages on a connection, close it (no reply)
                          when the next MAIL FROM arrives
  --close-on-data         answer DATA with 354, then close the connection
  --smtputf8              advertise SMTPUTF8 (RFC 6531; aiosmtpd's default is not to)
Recipients whose local part starts with "reject5" get 550 5.1.1, "reject4"
get 450 4.2.1; a sender starting with "reject" gets 553 5.7.1.
"""
import argparse, json, os, signal, ssl, threading
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword, SMTP

ap = argparse.ArgumentParser()
ap.add_argument("--host", default="127.0.0.1")
ap.add_argument("--port", type=int, default=2587)
ap.add_argument("--cert", required=True)
ap.add_argument("--key", required=True)
ap.add_argument("--user", action="append", default=[], help="user:password (repeatable)")
ap.add_argument("--outdir", default="mail")
ap.add_argument("--ready-file")
ap.add_argument("--implicit-tls", action="store_true", help="TLS from the first byte (port 465)")
ap.add_argument("--no-require-tls", action="store_true", help="plain SMTP, no STARTTLS offered")
ap.add_argument("--no-auth-required", action="store_true")
ap.add_argument("--tls13-tickets", type=int, default=2,
                help="TLS 1.3 NewSessionTickets after the handshake (OpenSSL default 2)")
ap.add_argument("--exclude-mech", action="append", default=[], help="e.g. PLAIN to offer only LOGIN")
ap.add_argument("--pipelining", action="store_true")
ap.add_argument("--idle-timeout", type=float, default=300.0)
ap.add_argument("--drop-mail-after", type=int, default=0)
ap.add_argument("--close-on-data", action="store_true")
ap.add_argument("--smtputf8", action="store_true")
a = ap.parse_args()
users = {u.split(":", 1)[0]: u.split(":", 1)[1] for u in a.user}
os.makedirs(a.outdir, exist_ok=True)
log = open(os.path.join(a.outdir, "log.jsonl"), "a", buffering=1)
lock = threading.Lock()
started = False  # Controller.start() connects to itself once: not logged


def emit(**kw):
    if not started:
        return
    with lock:
        log.write(json.dumps(kw) + "\n")


class Auth:
    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and users.get(auth_data.login.decode()) == auth_data.password.decode())
        emit(event="auth", mech=mechanism, ok=ok,
             user=auth_data.login.decode() if isinstance(auth_data, LoginPassword) else None)
        # handled=False: with the default a FAILED auth gets no reply at all
        # (the client would wait for its timeout) instead of "535 5.7.8 ..."
        return AuthResult(success=ok, handled=False,
                          auth_data=auth_data.login.decode() if ok else None)


def is_tls(server, session):
    t = server.transport
    return session.ssl is not None or (t is not None and t.get_extra_info("ssl_object") is not None)


class Store:
    n = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if a.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if address.startswith("reject"):
            return "553 5.7.1 <%s>: Sender address rejected" % address
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject5"):
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        if address.startswith("reject4"):
            return "450 4.2.1 <%s>: Mailbox busy, try again later" % address
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        Store.n += 1
        session.count = getattr(session, "count", 0) + 1
        name = os.path.join(a.outdir, "%d-%d.eml" % (os.getpid(), Store.n))
        with open(name + ".tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(name + ".tmp", name)
        emit(event="message", file=name, mail_from=envelope.mail_from, rcpt=envelope.rcpt_tos,
             mail_options=envelope.mail_options, tls=is_tls(server, session),
             auth=bool(getattr(session, "authenticated", False)), user=session.auth_data,
             smtputf8=bool(getattr(envelope, "smtp_utf8", False)))
        return "250 2.0.0 OK stored as %d" % Store.n


class TestSMTP(SMTP):
    async def smtp_MAIL(self, arg):
        if a.drop_mail_after and getattr(self.session, "count", 0) >= a.drop_mail_after:
            emit(event="drop", at="MAIL")
            self.transport.close()
            return
        return await super().smtp_MAIL(arg)

    async def smtp_DATA(self, arg):
        if a.close_on_data and self.envelope.rcpt_tos:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            emit(event="drop", at="DATA")
            self.transport.close()
            return
        return await super().smtp_DATA(arg)


ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(a.cert, a.key)
ctx.num_tickets = a.tls13_tickets
ctx.sni_callback = lambda sslobj, name, c: emit(event="tls", sni=name)


class C(Controller):
    def factory(self):
        emit(event="connect")
        return TestSMTP(self.handler, hostname="localhost",
                        tls_context=None if (a.implicit_tls or a.no_require_tls) else ctx,
                        require_starttls=not (a.implicit_tls or a.no_require_tls),
                        auth_required=not a.no_auth_required,
                        auth_require_tls=not (a.implicit_tls or a.no_require_tls),
                        authenticator=Auth(), auth_exclude_mechanism=a.exclude_mech,
                        timeout=a.idle_timeout, enable_SMTPUTF8=a.smtputf8)


# block SIGTERM/SIGINT before the server thread starts, then wait for them synchronously
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
c = C(Store(), hostname=a.host, port=a.port, ssl_context=ctx if a.implicit_tls else None)
c.start()  # binds in a thread; raises if the port is busy
started = True
print("READY", a.port, flush=True)
if a.ready_file:
    with open(a.ready_file + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(a.ready_file + ".tmp", a.ready_file)
signal.sigwait({signal.SIGTERM, signal.SIGINT})
c.stop()
