#!/usr/bin/python3
"""mime_parse.py FILE.eml... - parse messages the way a strict reader would.

For each file prints one JSON line:
  {"file","message_id","from","to","subject","date","text","html","defects":[...]}
(header values decoded, text/html the decoded body parts or null).

Defects collected:
  - every defect Python's parser records (policy.default only records them:
    raise_on_defect=False), on every part and on every header;
  - the first defect policy.strict raises on, parsing the same bytes and
    reading every header;
  - octet rules: CRLF only (no bare CR or LF), no line over 998 octets,
    the message ends in CRLF, headers are ASCII;
  - a required header missing (Date, From, To, Subject, Message-ID,
    MIME-Version), a Date that does not parse, a From/To without exactly
    one address.
Exit status 1 when any file has a defect, 2 on usage errors. Stdlib only.
"""
import email
import email.policy
import json
import sys

REQUIRED = ("Date", "From", "To", "Subject", "Message-ID", "MIME-Version")


def octet_defects(data):
    out = []
    for n, line in enumerate(data.split(b"\r\n"), 1):
        if b"\r" in line or b"\n" in line:
            out.append("line %d: bare CR or LF" % n)
        if len(line) > 998:
            out.append("line %d: %d octets (> 998)" % (n, len(line)))
    if data and not data.endswith(b"\r\n"):
        out.append("message does not end in CRLF")
    head = data.split(b"\r\n\r\n", 1)[0]
    if any(b >= 0x80 for b in head):
        out.append("non-ASCII octet in the header section")
    return out


def strict_defects(data):
    """policy.strict raises on the first defect, also when a header is read"""
    try:
        msg = email.message_from_bytes(data, policy=email.policy.strict)
        for part in msg.walk():
            for _, value in part.items():
                str(value)
            if not part.is_multipart():
                part.get_content()
    except Exception as e:  # any exception is a defect of the input
        return ["strict: %s: %s" % (type(e).__name__, e)]
    return []


def body(msg, subtype):
    part = msg.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_type() != "text/" + subtype:
        return None
    return part.get_content()


def parse(path):
    res = {"file": path, "message_id": None, "from": None, "to": None, "subject": None,
           "date": None, "text": None, "html": None, "defects": []}
    d = res["defects"]
    try:
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "rb") as f:
            msg = email.message_from_binary_file(f, policy=email.policy.default)
    except OSError as e:
        d.append("cannot read: %s" % e)
        return res
    d.extend(octet_defects(data))
    for part in msg.walk():
        ctype = part.get_content_type()
        d.extend("%s: %s: %s" % (ctype, type(x).__name__, x) for x in part.defects)
        for name, value in part.items():
            d.extend("header %s: %s: %s" % (name, type(x).__name__, x)
                     for x in getattr(value, "defects", ()))
    d.extend(strict_defects(data))
    for h in REQUIRED:
        if msg[h] is None:
            d.append("missing header %s" % h)
        elif len(msg.get_all(h)) != 1:
            d.append("header %s present %d times" % (h, len(msg.get_all(h))))
    try:
        res["message_id"] = str(msg["Message-ID"]) if msg["Message-ID"] else None
        res["from"] = str(msg["From"]) if msg["From"] else None
        res["to"] = str(msg["To"]) if msg["To"] else None
        res["subject"] = str(msg["Subject"]) if msg["Subject"] is not None else None
        if msg["Date"] is not None:
            dt = msg["Date"].datetime
            if dt is None:
                d.append("Date does not parse")
            else:
                res["date"] = dt.isoformat()
        for h in ("From", "To"):
            if msg[h] is not None and len(msg[h].addresses) != 1:
                d.append("%s: %d addresses, want 1" % (h, len(msg[h].addresses)))
        res["text"] = body(msg, "plain")
        res["html"] = body(msg, "html")
    except Exception as e:
        d.append("reading: %s: %s" % (type(e).__name__, e))
    return res


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    sys.stdout.reconfigure(encoding="utf-8")
    bad = 0
    for path in argv[1:]:
        res = parse(path)
        if res["defects"]:
            bad += 1
        print(json.dumps(res, ensure_ascii=False), flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
