#!/usr/bin/env python3
"""summary.py - count TAP results in meson's testlog.json and print the
last line of the run: "N passed, N failed". A test program that failed
without a TAP failure (a crash, a sanitizer report, a timeout) counts as
one more failure. Exit status 1 when anything failed."""
import json
import re
import sys

path = sys.argv[1]
passed = failed = 0
failures = []
try:
    lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
except OSError as e:
    print(f"no test log: {e}")
    print("0 passed, 1 failed")
    sys.exit(1)
for line in lines:
    if not line.strip():
        continue
    t = json.loads(line)
    out = t.get("stdout") or ""
    p = len(re.findall(r"^ok \d+", out, re.M))
    f = len(re.findall(r"^not ok \d+", out, re.M))
    passed += p
    failed += f
    # each failed subtest with the diagnostic lines after it, so that the
    # tail of a CI log says what failed
    out_lines = out.splitlines()
    for i, l in enumerate(out_lines):
        if re.match(r"not ok \d+", l):
            diag = []
            for d in out_lines[i + 1:i + 13]:
                if not d.startswith("#"):
                    break
                diag.append(d)
            failures.append((t.get("name"), l, diag))
    if t.get("result") not in ("OK", "EXPECTEDFAIL", "SKIP") and f == 0:
        failed += 1
        print(f"{t.get('name')}: {t.get('result')} without a TAP failure (crash or timeout?)")
for name, line, diag in failures:
    print(f"{name}: {line}")
    for d in diag:
        print(f"    {d}")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed or passed == 0 else 0)
