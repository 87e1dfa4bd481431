#!/bin/bash
# test_compose.sh - the Docker stack checked without a Docker engine (TAP):
# docker-compose.yml, deploy/docker, deploy/dovecot, deploy/grafana and the
# `make compose` targets.
#
# Proves:
# - `docker-compose config -q` accepts the file with no API_TOKEN in the
#   environment, and a token or password there reaches nothing;
# - every service has a healthcheck or is a one-shot that others wait for
#   with service_completed_successfully; every depends_on has a condition
#   (service_healthy on a service with a healthcheck, or completed) and
#   there is no cycle; every published port is bound to 127.0.0.1; every
#   container runs as a non-root user (last USER of the Dockerfile's final
#   stage, `user:` for images); runtime stages are debian:bookworm-slim, a
#   Dockerfile that compiles is multi-stage; every bind-mounted host path
#   exists; the health service's IMAP loop (deploy/compose/feedback-loops.json)
#   reaches a compose service, over TLS, with its CA and password in a volume
#   that service shares; prometheus.yml scrapes compose services with the
#   services' API token secret, and each lists in ALLOWED_HOSTS the name it is
#   scraped by; Grafana's datasource and dashboard paths match the mounts;
# - state and secrets: every stateful service keeps its data in a named
#   volume mounted where its image keeps it (Kafka: KAFKA_LOG_DIRS = the
#   image's volume /var/lib/kafka/data, its default being under /tmp; both
#   services' DB_PATH directory; Prometheus' TSDB; Grafana's data; the seed
#   mailbox), every long-running service has a restart policy; secrets are
#   compose secrets from files in ./secrets (git-ignored, out of the build
#   context) read through NAME_FILE, no environment: value is a secret; both
#   services read API_TOKEN_FILE from one secret (they listen on 0.0.0.0 in
#   their containers), Grafana's admin password is its own secret;
# - PostgreSQL (DESIGN 9.6): one postgres service (official image, 15+,
#   Debian) with a pg_isready healthcheck over TCP, POSTGRES_PASSWORD_FILE
#   from a secret, its data directory in a named volume, not published, on
#   an internal network shared with its clients alone, its init script
#   reading only secrets attached to it; every service built from
#   deploy/docker gets DATABASE_URL_FILE from a secret (never DATABASE_URL)
#   and waits for postgres to be healthy; two warmup-service replicas share
#   one URL secret, each on its own host port, health-service has its own;
#   no environment value is a URL with a password; the runtime image
#   installs libpq5;
# - the seed mailbox image's entrypoint (deploy/dovecot/seed-mailbox.sh), run
#   here outside Docker as an unprivileged user, makes its CA, certificate and
#   password, passes its own healthcheck (STARTTLS verified for the name
#   "dovecot", LOGIN), fails it for a name the certificate lacks, keeps them
#   across a restart; and the real health-service, given the compose loops
#   file with only host, port and file paths rewritten, verifies that
#   certificate and finds a real copy (written by the warmup service's DRYRUN
#   client) put into the seed INBOX: delivered;
# - the dashboard parses, uses the provisioned datasource uid and defined
#   variables only, and every metric name and label of every PromQL
#   expression appears in the real /metrics of the two services (started here
#   with kafka-dev-broker, after real traffic), histograms as _bucket/_sum/
#   _count; a real Prometheus (when installed) scraping them with the bearer
#   token evaluates every expression to a non-empty result;
# - hadolint (when on the PATH) and shellcheck (when installed) pass;
# - `make compose` uses `docker compose` when it works, else docker-compose,
#   runs `up -d --build`, makes ./secrets (0700) with api_token and
#   grafana_admin_password (0644, distinct random values) when missing, keeps
#   them, seeds api_token from API_TOKEN in the environment or an old .env;
#   likewise postgres_password, warmup_db_password and health_db_password,
#   and warmup_database_url / health_database_url made from the role
#   passwords (role and database warmup / health on the service postgres);
#   the configuration rendered with those files present holds none of
#   their values;
#   users 10001, 65534, 472 and 999 read the file bind-mounted as compose mounts
#   it, other host users cannot; `make compose-down` runs `down` (docker and
#   docker-compose are stubs here); the services started below read their
#   token from that file (API_TOKEN_FILE), with compose's ALLOWED_HOSTS, and
#   answer the Host names Prometheus scrapes them by;
# - on a throwaway PostgreSQL cluster standing in for the postgres
#   container: deploy/compose/postgres-init.sql (its secret paths pointed
#   at the files make compose wrote) makes roles warmup and health, not
#   superusers, each owning its database, logging in with the passwords of
#   the URL files (scram-sha-256, a wrong one refused); two warmup-service
#   replicas and health-service run on it with DATABASE_URL_FILE = those
#   files (host and port rewritten): users registered on either replica are
#   listed by both and reached by a broadcast from the first, which the
#   health service tracks and checks, in tables of its own database.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dovecot.sh" # stop_dovecot
. "$(dirname "$0")/pg.sh"      # start_pg, pg_sql, stop_pg

for b in "$BROKER_BIN" "$WARMUP_BIN" "$HEALTH_BIN"; do
  [ -x "$b" ] || { echo "Bail out! $b is missing (build first)"; exit 1; }
done
for c in docker-compose dovecot openssl curl make psql; do
  command -v "$c" >/dev/null || { echo "Bail out! $c is not installed"; exit 1; }
done
$PY -c 'import yaml' 2>/dev/null || { echo "Bail out! $PY has no yaml module (python3-yaml)"; exit 1; }

# checks MODE ARGS... - compose_check.py MODE: its "STATUS<TAB>NAME<TAB>DETAIL"
# lines to TAP ("#" lines are comments), plus a failure if it did not run to
# the end (a crash must not silently drop the checks after it)
checks() {
  local st name detail rc
  $PY "$TMP/compose_check.py" "$@" >"$TMP/checks.out" 2>"$TMP/checks.err"
  rc=$?
  while IFS=$'\t' read -r st name detail; do
    case $st in
      "#") echo "# $name" ;;
      *) ok "$st" "$name"; [ "$st" = 0 ] || [ -z "$detail" ] || echo "#   $detail" ;;
    esac
  done <"$TMP/checks.out"
  ok $rc "compose_check.py $1 ran to the end" || tail -5 "$TMP/checks.err" | sed 's/^/#   /'
}

# compose_check.py - the static checks (YAML, JSON, PromQL), one "STATUS<TAB>NAME<TAB>DETAIL" line each
cat >"$TMP/compose_check.py" <<'PY'
"""compose_check.py - static checks of the Docker stack for test_compose.sh.

Every check prints one line "STATUS<TAB>NAME<TAB>DETAIL" with STATUS 0 (pass)
or 1 (fail); the shell turns them into TAP lines. Needs PyYAML (Debian's python3-yaml, a
dependency of docker-compose).

  compose_check.py compose RAW.yml RESOLVED.yml SRC_DIR
      docker-compose.yml: healthchecks, depends_on conditions, published
      ports, non-root users, Dockerfiles, bind mounts, the seed mailbox
      wiring (feedback loops file, shared volume), Prometheus and Grafana
      wiring. RAW is the file as written (depends_on and ports as the
      author wrote them), RESOLVED the output of `docker-compose config`
      (absolute bind paths).
  compose_check.py dashboard DASH.json DATASOURCES.yml METRICS...
      the dashboard: JSON, panels, datasource uid, variables, and every
      metric name and label of every PromQL expression against the real
      /metrics bodies given.
  compose_check.py queries DASH.json
      one line per panel target: "PANEL / REF<TAB>EXPR" with the dashboard
      variables replaced, for a real Prometheus to evaluate.
"""
import json
import os
import re
import sys

import yaml

OK, FAIL = "0", "1"


def out(status, name, detail=""):
    print(f"{status}\t{name}\t{detail}".replace("\n", " "))


def check(cond, name, detail=""):
    out(OK if cond else FAIL, name, "" if cond else detail)


# ---- docker-compose.yml --------------------------------------------------

ROOT_USERS = {"root", "0", "0:0"}


def dockerfile_stages(path):
    """[(from_image, [USER values])] per stage of a Dockerfile"""
    stages = []
    text = re.sub(r"\\\n", " ", open(path).read())
    for line in text.splitlines():
        line = line.strip()
        m = re.match(r"(?i)FROM\s+(?:--\S+\s+)*(\S+)", line)
        if m:
            stages.append((m.group(1), []))
            continue
        m = re.match(r"(?i)USER\s+(\S+)", line)
        if m and stages:
            stages[-1][1].append(m.group(1))
    return stages


def one_shots(raw):
    """services some other service waits for with service_completed_successfully"""
    s = set()
    for svc in raw["services"].values():
        dep = svc.get("depends_on")
        if isinstance(dep, dict):
            for name, cond in dep.items():
                if isinstance(cond, dict) and cond.get("condition") == "service_completed_successfully":
                    s.add(name)
    return s


def has_healthcheck(svc):
    hc = svc.get("healthcheck")
    return bool(hc) and not hc.get("disable") and hc.get("test") not in (None, ["NONE"], "NONE")


def env_of(svc):
    """a service's environment as a dict of strings (list or mapping syntax)"""
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def build_dockerfile(src, svc):
    """the Dockerfile a service is built from, or None for an image"""
    b = svc.get("build")
    if b is None:
        return None
    if isinstance(b, str):
        return os.path.normpath(os.path.join(src, b, "Dockerfile"))
    return os.path.normpath(os.path.join(src, b.get("context", "."), b.get("dockerfile", "Dockerfile")))


def dockerfile_final(path):
    """(ENV dict, VOLUME paths) of a Dockerfile's final stage"""
    env, vols = {}, []
    text = re.sub(r"\\\n", " ", open(path).read())
    for line in text.splitlines():
        line = line.strip()
        if re.match(r"(?i)FROM\s", line):
            env, vols = {}, []
        m = re.match(r"(?i)ENV\s+(\S+)(.*)", line)
        if m and "=" not in m.group(1):
            env[m.group(1)] = m.group(2).strip()
        elif m:
            env.update((k, v.strip('"')) for k, v in re.findall(r'(\w+)=("[^"]*"|\S+)', line[3:]))
        m = re.match(r"(?i)VOLUME\s+(.*)", line)
        if m:
            body = m.group(1).strip()
            vols += json.loads(body) if body.startswith("[") else body.split()
    return env, vols


def image_name(svc):
    """an image reference without its tag or digest"""
    return re.sub(r"(@.*|:[^/]*)$", "", svc.get("image") or "")


# Where an image keeps its state (its VOLUME or documented data directory).
# apache/kafka declares VOLUME /var/lib/kafka/data (owned by appuser), but
# its log.dirs defaults to /tmp/kraft-combined-logs: KAFKA_LOG_DIRS must
# point at the volume. prom/prometheus: VOLUME /prometheus, the default
# --storage.tsdb.path. grafana/grafana: GF_PATHS_DATA=/var/lib/grafana.
IMAGE_DATA = {"apache/kafka": "/var/lib/kafka/data", "prom/prometheus": "/prometheus",
              "grafana/grafana": "/var/lib/grafana", "postgres": "/var/lib/postgresql/data"}
# long-running services that keep nothing worth keeping, and why
STATELESS = {"mailpit": "keeps caught mail in memory: a viewer, nothing reads it back"}
RESTART_POLICIES = {"always", "unless-stopped", "on-failure"}
# an environment variable that carries a secret's value (NAME_FILE carries a path)
SECRET_VAR = re.compile(r"(TOKEN|PASSWORD|PASSWD|SECRET|_KEY|CREDENTIALS|DATABASE_URL)$")
# a URL with a password in it (scheme://user:password@host)
URL_PASSWORD = re.compile(r"\w://[^/\s:@]*:[^/\s@]+@")
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def volume_target(v):
    """(source, target, type) of a volume entry, short or long syntax"""
    if isinstance(v, dict):
        return v.get("source"), v.get("target"), v.get("type")
    parts = v.split(":")
    if len(parts) == 1:
        return None, parts[0], "volume"
    src = parts[0]
    typ = "bind" if src.startswith((".", "/", "~")) else "volume"
    return src, parts[1], typ


def secret_file(raw, name, path):
    """the host file (as written) of the secret that service name sees at
    path (/run/secrets/<target>), or None when no attached secret is there"""
    if not path or not path.startswith("/run/secrets/"):
        return None
    for s in raw["services"].get(name, {}).get("secrets") or []:
        src, tgt = (s, s) if isinstance(s, str) else (s.get("source"), s.get("target") or s.get("source"))
        if path in (f"/run/secrets/{tgt}", tgt):
            return os.path.normpath(((raw.get("secrets") or {}).get(src) or {}).get("file") or "") or None
    return None


def state_and_secrets(raw, src, shots):
    """named volumes where the state is, restart policies, secrets as files"""
    services = raw["services"]
    named = set(raw.get("volumes") or {})
    longrun = [n for n in services if n not in shots]

    # state: every path where a service keeps data is a named volume
    bad = []
    for name in longrun:
        svc = services[name]
        env = env_of(svc)
        paths = []
        if name in STATELESS:
            print(f"#\t{name}: no volume, {STATELESS[name]}")
            continue
        df = build_dockerfile(src, svc)
        if df:
            denv, dvols = dockerfile_final(df) if os.path.isfile(df) else ({}, [])
            paths += dvols
            db = env.get("DB_PATH") or denv.get("DB_PATH")
            if db:
                paths.append(os.path.dirname(db))
        elif image_name(svc) == "postgres":
            paths.append(env.get("PGDATA") or IMAGE_DATA["postgres"])
        elif image_name(svc) in IMAGE_DATA:
            paths.append(IMAGE_DATA[image_name(svc)])
        if not paths:
            bad.append(f"{name}: where does {svc.get('image') or df} keep its data? (IMAGE_DATA or STATELESS)")
            continue
        mounts = {t: (s, typ) for s, t, typ in (volume_target(v) for v in svc.get("volumes") or [])}
        for p in sorted(set(paths)):
            s, typ = mounts.get(p, (None, None))
            if typ != "volume" or s not in named:
                bad.append(f"{name}: {p} is {'not mounted' if s is None else f'{typ} {s}'}")
        print(f"#\t{name}: data in {', '.join(sorted(set(paths)))}")
    check(not bad, "every stateful service keeps its data in a named volume (kept by `down`)", "; ".join(bad))

    ka = [n for n in longrun if image_name(services[n]) == "apache/kafka"]
    bad = [f"{n}: KAFKA_LOG_DIRS={env_of(services[n]).get('KAFKA_LOG_DIRS')!r}" for n in ka
           if env_of(services[n]).get("KAFKA_LOG_DIRS") != IMAGE_DATA["apache/kafka"]]
    check(ka and not bad, "Kafka writes its log (topics, committed offsets) to /var/lib/kafka/data (KAFKA_LOG_DIRS)",
          "; ".join(bad) + " (the image's default is under /tmp)")
    for n in longrun:
        for arg in services[n].get("command") or []:
            m = re.match(r"--storage\.tsdb\.path=(.*)", str(arg))
            if m and image_name(services[n]) == "prom/prometheus":
                check(m.group(1) == IMAGE_DATA["prom/prometheus"], f"{n}: --storage.tsdb.path is its volume", m.group(1))

    bad = [f"{n}: {services[n].get('restart')!r}" for n in longrun
           if str(services[n].get("restart", "no")).split(":")[0] not in RESTART_POLICIES]
    check(not bad, f"every long-running service ({len(longrun)}) has a restart policy", "; ".join(bad))

    # secrets: files under ./secrets, read through NAME_FILE, never a value in environment:
    top = raw.get("secrets") or {}
    bad = [f"{k}: {v}" for k, v in top.items()
           if not isinstance(v, dict) or not os.path.normpath(v.get("file") or "").startswith("secrets/")]
    check(top and not bad, f"secrets ({', '.join(sorted(top))}) are files under ./secrets", "; ".join(bad) or "none")

    bad = []
    for name, svc in services.items():
        for k, v in env_of(svc).items():
            if SECRET_VAR.search(k) and not k.endswith("_FILE"):
                bad.append(f"{name}: {k}")
            elif re.search(r"\$\{?\w*(TOKEN|PASSWORD|SECRET|DATABASE_URL)", v):
                bad.append(f"{name}: {k} interpolates {v}")
            elif URL_PASSWORD.search(v):
                bad.append(f"{name}: {k} is a URL with a password")
    check(not bad, "no environment: block carries a secret's value (only NAME_FILE paths)", "; ".join(bad))

    token_file = None
    bad = []
    built = [n for n in longrun if build_dockerfile(src, services[n]) and
             "deploy/docker/Dockerfile" in build_dockerfile(src, services[n])]
    for name in built:
        env = env_of(services[name])
        f = secret_file(raw, name, env.get("API_TOKEN_FILE"))
        if f is None or "API_TOKEN" in env:
            bad.append(f"{name}: API_TOKEN_FILE={env.get('API_TOKEN_FILE')!r}, API_TOKEN {'set' if 'API_TOKEN' in env else 'unset'}")
        elif token_file not in (None, f):
            bad.append(f"{name}: token {f}, another service {token_file}")
        token_file = token_file or f
    check(built and not bad, f"{' and '.join(built)} read API_TOKEN_FILE from one compose secret ({token_file})",
          "; ".join(bad))

    # inside its container a service listens on BIND_ADDR (the image sets
    # 0.0.0.0): not loopback -> its API token must come from a secret
    bad = []
    for name in built:
        df = build_dockerfile(src, services[name])
        env = env_of(services[name])
        bind = env.get("BIND_ADDR") or dockerfile_final(df)[0].get("BIND_ADDR") or "127.0.0.1"
        if bind not in LOOPBACK and secret_file(raw, name, env.get("API_TOKEN_FILE")) is None:
            bad.append(f"{name}: BIND_ADDR {bind} without an API token secret")
        elif bind not in LOOPBACK:
            print(f"#\t{name}: BIND_ADDR {bind}, API_TOKEN_FILE {env.get('API_TOKEN_FILE')}")
    check(built and not bad, "every service listening on a non-loopback BIND_ADDR gets API_TOKEN_FILE from a secret",
          "; ".join(bad))

    gr = [n for n in longrun if image_name(services[n]) == "grafana/grafana"]
    for name in gr:
        env = env_of(services[name])
        f = secret_file(raw, name, env.get("GF_SECURITY_ADMIN_PASSWORD__FILE"))
        check(f is not None and "GF_SECURITY_ADMIN_PASSWORD" not in env,
              f"{name}: the admin password comes from a secret (GF_SECURITY_ADMIN_PASSWORD__FILE)",
              f"GF_SECURITY_ADMIN_PASSWORD__FILE={env.get('GF_SECURITY_ADMIN_PASSWORD__FILE')!r}, "
              f"GF_SECURITY_ADMIN_PASSWORD {'set' if 'GF_SECURITY_ADMIN_PASSWORD' in env else 'unset'}")
        check(f is not None and f != token_file, f"{name}: its admin password is its own secret ({f}), not the API token",
              f"{f} (API token: {token_file})")
    check(bool(gr), "a grafana/grafana service", "none")


def built_as(src, svc):
    """the SERVICE build argument of a service built from deploy/docker/Dockerfile, else None"""
    df = build_dockerfile(src, svc)
    if not df or not df.endswith("deploy/docker/Dockerfile"):
        return None
    args = svc["build"].get("args") or {}
    if isinstance(args, list):
        args = dict(a.split("=", 1) for a in args)
    return args.get("SERVICE", "warmup-service")


def database(raw, src, shots):
    """PostgreSQL (DESIGN 9.6): the postgres service, both services on it
    through DATABASE_URL_FILE secrets, two warmup-service replicas"""
    services = raw["services"]
    pgs = [n for n in services if image_name(services[n]) == "postgres"]
    check(len(pgs) == 1, "one postgres service (official image)", f"{pgs}")
    if not pgs:
        return
    pg = pgs[0]
    svc = services[pg]
    env = env_of(svc)
    tag = (svc.get("image") or "").partition(":")[2]
    check(re.fullmatch(r"1[5-9](\.\d+)*(-(bookworm|bullseye))?", tag) is not None,
          f"{pg}: image {svc.get('image')} is PostgreSQL 15+ on Debian (not alpine)", tag or "no tag")
    test = (svc.get("healthcheck") or {}).get("test") or []
    test = " ".join(test) if isinstance(test, list) else str(test)
    check("pg_isready" in test and "-h" in test.split(), f"{pg}: healthcheck pg_isready over TCP (ready once initialised)",
          test)
    pw = secret_file(raw, pg, env.get("POSTGRES_PASSWORD_FILE"))
    check(pw is not None and pw.startswith("secrets/") and "POSTGRES_PASSWORD" not in env,
          f"{pg}: POSTGRES_PASSWORD_FILE is a compose secret ({pw}), no POSTGRES_PASSWORD", repr(env))
    data = env.get("PGDATA") or IMAGE_DATA["postgres"]
    vol = [s for s, t, typ in (volume_target(v) for v in svc.get("volumes") or [])
           if t == data and typ == "volume" and s in (raw.get("volumes") or {})]
    check(bool(vol), f"{pg}: its data directory {data} is the named volume {vol[0] if vol else None}", "not mounted")
    check(not svc.get("ports"), f"{pg}: not published on the host", repr(svc.get("ports")))
    # the first start's script (roles, databases) reads secrets attached to postgres
    inits = [s for s, t, typ in (volume_target(v) for v in svc.get("volumes") or [])
             if typ == "bind" and t.startswith("/docker-entrypoint-initdb.d/")]
    attached = {s if isinstance(s, str) else s.get("target") or s.get("source") for s in svc.get("secrets") or []}
    read = set()
    for f in inits:
        if os.path.isfile(os.path.join(src, f)):
            read |= set(re.findall(r"/run/secrets/([\w.-]+)", open(os.path.join(src, f)).read()))
    check(inits and read and read <= attached,
          f"{pg}: its init script ({', '.join(inits)}) reads secrets attached to it ({', '.join(sorted(read))})",
          f"reads {sorted(read)}, attached {sorted(attached)}")

    # the services that use it: DATABASE_URL_FILE from a secret, after postgres is healthy
    built = {n: built_as(src, services[n]) for n in services if built_as(src, services[n])}
    bad, urls = [], {}
    for name, what in sorted(built.items()):
        e = env_of(services[name])
        f = secret_file(raw, name, e.get("DATABASE_URL_FILE"))
        dep = (services[name].get("depends_on") or {}).get(pg)
        if f is None or not f.startswith("secrets/") or "DATABASE_URL" in e:
            bad.append(f"{name}: DATABASE_URL_FILE={e.get('DATABASE_URL_FILE')!r} ({f})")
        elif not (isinstance(dep, dict) and dep.get("condition") == "service_healthy"):
            bad.append(f"{name}: depends_on {pg} {dep!r}")
        urls.setdefault(what, set()).add(f)
    check(set(built.values()) == {"warmup-service", "health-service"} and not bad,
          f"{', '.join(sorted(built))}: DATABASE_URL_FILE from a compose secret under ./secrets, "
          f"started once {pg} is healthy", "; ".join(bad))
    w, h = urls.get("warmup-service", set()), urls.get("health-service", set())
    check(len(w) == 1 and len(h) == 1 and w != h,
          f"the warmup replicas share one database URL secret ({', '.join(sorted(map(str, w)))}), health-service has its own "
          "(one schema per database)", f"warmup {w}, health {h}")

    # two warmup-service replicas, each on its own loopback host port
    reps = sorted(n for n, what in built.items() if what == "warmup-service")
    hostports = {}
    for n in reps:
        for p in services[n].get("ports") or []:
            hp = p.get("published") if isinstance(p, dict) else str(p).split(":")[1]
            hostports.setdefault(str(hp), []).append(n)
    check(len(reps) == 2 and len(hostports) == 2 and all(len(v) == 1 for v in hostports.values()),
          f"two warmup-service replicas ({', '.join(reps)}), each published on its own port "
          f"({', '.join(sorted(hostports))})", f"{reps} {hostports}")

    # the database's network: internal, shared with its clients alone
    nets = svc.get("networks") or ["default"]
    nets = list(nets) if isinstance(nets, (list, dict)) else []
    top = raw.get("networks") or {}
    clients = {n for n in services if "DATABASE_URL_FILE" in env_of(services[n])}
    bad = []
    for net in nets:
        if not (top.get(net) or {}).get("internal"):
            bad.append(f"{net} is not internal")
        on = {n for n in services if n != pg and net in list(services[n].get("networks") or ["default"])}
        if on != clients:
            bad.append(f"{net}: {sorted(on)} (clients {sorted(clients)})")
    check(nets and not bad, f"{pg} is only on internal network(s) {nets}, shared with its clients alone",
          "; ".join(bad))

    # the images link libpq: the runtime stage installs it
    if "dependency('libpq')" in open(os.path.join(src, "meson.build")).read():
        for df in sorted({build_dockerfile(src, services[n]) for n in built}):
            text = re.sub(r"\\\n", " ", open(df).read())
            final = re.split(r"(?im)^FROM\s", text)[-1]
            check(re.search(r"\blibpq5\b", final) is not None and "libpq-dev" in text,
                  f"{os.path.relpath(df, src)}: libpq-dev to build, libpq5 in the runtime stage", "missing")


def compose(raw_path, resolved_path, src):
    raw = yaml.safe_load(open(raw_path))
    res = yaml.safe_load(open(resolved_path))
    if not isinstance(res, dict) or "services" not in res:
        sys.exit(f"{resolved_path}: no resolved configuration (docker-compose config failed)")
    services = raw["services"]
    shots = one_shots(raw)

    for name, svc in services.items():
        if name in shots:
            ok = not has_healthcheck(svc) and not svc.get("ports") and svc.get("restart", "no") in ("no", '"no"')
            check(ok, f"service {name}: one-shot (waited for with service_completed_successfully, restart no, no ports)",
                  f"restart={svc.get('restart')!r} ports={svc.get('ports')!r}")
        else:
            check(has_healthcheck(svc), f"service {name}: has a healthcheck", "no healthcheck and not a one-shot")

    bad = []
    for name, svc in services.items():
        dep = svc.get("depends_on")
        if dep is None:
            continue
        if not isinstance(dep, dict):
            bad.append(f"{name}: depends_on is a list (no condition)")
            continue
        for target, cond in dep.items():
            c = cond.get("condition") if isinstance(cond, dict) else None
            if c == "service_healthy":
                if not has_healthcheck(services.get(target, {})):
                    bad.append(f"{name} -> {target}: service_healthy but {target} has no healthcheck")
            elif c == "service_completed_successfully":
                if target not in shots:
                    bad.append(f"{name} -> {target}: not a one-shot")
            else:
                bad.append(f"{name} -> {target}: condition {c!r}")
    check(not bad, "every depends_on waits for service_healthy or service_completed_successfully", "; ".join(bad))

    # the start order has no cycle and reaches every service
    order, seen = [], set()

    def visit(n, stack=()):
        if n in stack:
            raise ValueError(" -> ".join(stack + (n,)))
        if n in seen:
            return
        for d in (services[n].get("depends_on") or {}):
            visit(d, stack + (n,))
        seen.add(n)
        order.append(n)
    try:
        for n in services:
            visit(n)
        check(True, "depends_on has no cycle")
        print(f"#\tstart order: {' '.join(order)}")
    except (ValueError, KeyError) as e:
        check(False, "depends_on has no cycle", str(e))

    bad = []
    nports = 0
    for name, svc in services.items():
        for p in svc.get("ports") or []:
            nports += 1
            if isinstance(p, dict):
                if p.get("host_ip") != "127.0.0.1":
                    bad.append(f"{name}: {p}")
            elif not (isinstance(p, str) and re.fullmatch(r"127\.0\.0\.1:\d+(-\d+)?:\d+(-\d+)?(/(tcp|udp))?", p)):
                bad.append(f"{name}: {p!r}")
    check(not bad and nports > 0, f"every published port ({nports}) is bound to 127.0.0.1", "; ".join(bad))

    bad = []
    for name, svc in services.items():
        user = str(svc.get("user", "")).strip()
        if "build" in svc:
            b = svc["build"]
            ctx = b if isinstance(b, str) else b.get("context", ".")
            df = os.path.join(src, ctx, "Dockerfile" if isinstance(b, str) else b.get("dockerfile", "Dockerfile"))
            if not os.path.isfile(df):
                df = os.path.join(src, b.get("dockerfile", "")) if isinstance(b, dict) else df
            if not os.path.isfile(df):
                bad.append(f"{name}: Dockerfile {df} missing")
                continue
            stages = dockerfile_stages(df)
            users = stages[-1][1] if stages else []
            if not users or users[-1] in ROOT_USERS or users[-1].startswith(("root:", "0:")):
                bad.append(f"{name}: final stage of {os.path.relpath(df, src)} ends with USER {users[-1] if users else '(none)'}")
            if user and (user in ROOT_USERS or user.startswith(("root:", "0:"))):
                bad.append(f"{name}: user {user} overrides the Dockerfile")
        elif not user or user in ROOT_USERS or user.startswith(("root:", "0:")):
            bad.append(f"{name}: image {svc.get('image')} runs as {user or 'its default user (no user:)'}")
    check(not bad, "every container runs as a non-root user (USER in Dockerfiles, user: for images)", "; ".join(bad))

    state_and_secrets(raw, src, shots)
    database(raw, src, shots)

    dfs = set()
    for svc in services.values():
        b = svc.get("build")
        if isinstance(b, dict):
            dfs.add(os.path.normpath(os.path.join(src, b.get("context", "."), b.get("dockerfile", "Dockerfile"))))
    for df in sorted(dfs):
        st = dockerfile_stages(df)
        rel = os.path.relpath(df, src)
        check(bool(st) and st[-1][0] == "debian:bookworm-slim", f"{rel}: runtime stage is debian:bookworm-slim",
              f"final FROM {st[-1][0] if st else None}")
        text = open(df).read()
        if "build-essential" in text or "meson" in text:  # compiles: the toolchain must stay out of the runtime
            check(len(st) >= 2, f"{rel}: multi-stage (toolchain only in the build stage)", f"{len(st)} stage(s)")

    bad = []
    nbind = 0
    for name, svc in res["services"].items():
        for v in svc.get("volumes") or []:
            s, t, typ = volume_target(v)
            if typ == "bind":
                nbind += 1
                if not os.path.exists(s):
                    bad.append(f"{name}: {s} -> {t}")
    check(not bad, f"every bind-mounted host path exists ({nbind})", "missing: " + "; ".join(bad))

    # seed mailbox: the health service's imap loops reach a compose service
    # and read their secrets from a volume that service writes
    hs = services.get("health-service", {})
    env = hs.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    lf = env.get("FEEDBACK_LOOPS_FILE")
    host_file = None
    for v in hs.get("volumes") or []:
        s, t, typ = volume_target(v)
        if typ == "bind" and t == lf:
            host_file = os.path.normpath(os.path.join(src, s))
    check(bool(lf) and host_file is not None and os.path.isfile(host_file),
          "health-service: FEEDBACK_LOOPS_FILE is a file of the tree mounted into the container",
          f"FEEDBACK_LOOPS_FILE={lf!r} mounted from {host_file!r}")
    if host_file and os.path.isfile(host_file):
        loops = json.load(open(host_file))
        imap = {d: e for d, e in loops.items() if e.get("loop") == "imap"}
        check(bool(imap), f"{os.path.relpath(host_file, src)}: at least one imap loop", "none")
        hs_vols = [volume_target(v) for v in hs.get("volumes") or []]
        for dom, e in sorted(imap.items()):
            host = e.get("host")
            check(host in services, f"loop {dom}: host {host!r} is a compose service", "unknown host")
            check(e.get("tls") in ("starttls", "tls"), f"loop {dom}: TLS ({e.get('tls')})", "tls none")
            peer_vols = {volume_target(v)[0] for v in services.get(host, {}).get("volumes") or []
                         if volume_target(v)[2] == "volume"}
            for key in ("ca_file", "password_file"):
                path = e.get(key)
                vol = [s for s, t, typ in hs_vols if path and typ == "volume" and path.startswith(t.rstrip("/") + "/")]
                check(bool(vol) and vol[0] in peer_vols,
                      f"loop {dom}: {key} is in a volume that {host} shares with health-service",
                      f"{key}={path!r} volume={vol}")
            hc = services.get(host, {})
            dep = (hs.get("depends_on") or {}).get(host, {})
            check(isinstance(dep, dict) and dep.get("condition") == "service_healthy",
                  f"health-service starts after {host} is healthy (the loop reads its files at start)", repr(dep))

    # Prometheus: the mounted config scrapes compose services with the token
    # file its entrypoint writes from API_TOKEN
    pr = services.get("prometheus")
    check(pr is not None, "a prometheus service", "missing")
    if pr:
        mounts = {t: s for s, t, typ in (volume_target(v) for v in pr.get("volumes") or []) if typ == "bind"}
        cfg_src = mounts.get("/etc/prometheus/prometheus.yml")
        check(cfg_src is not None and os.path.normpath(cfg_src) == "deploy/prometheus/prometheus.yml",
              "prometheus mounts deploy/prometheus/prometheus.yml", repr(cfg_src))
        if cfg_src and os.path.isfile(os.path.join(src, cfg_src)):
            cfg = yaml.safe_load(open(os.path.join(src, cfg_src)))
            rules = cfg.get("rule_files") or []
            missing = [r for r in rules if os.path.join("/etc/prometheus", r) not in mounts]
            check(not missing, "every rule file of prometheus.yml is mounted", f"not mounted: {missing}")
            targets, creds = [], set()
            for sc in cfg.get("scrape_configs") or []:
                for st in sc.get("static_configs") or []:
                    targets += st.get("targets") or []
                cf = (sc.get("authorization") or {}).get("credentials_file")
                if cf:
                    creds.add(cf)
            bad = [t for t in targets if t.split(":")[0] not in services]
            check(targets and not bad, f"prometheus.yml scrapes compose services ({', '.join(targets)})", f"unknown: {bad}")
            token_file = secret_file(raw, "warmup-service", env_of(services.get("warmup-service", {})).get("API_TOKEN_FILE"))
            bad = [c for c in creds if token_file is None or secret_file(raw, "prometheus", c) != token_file]
            check(creds and not bad,
                  f"the bearer token file(s) {sorted(creds)}: the services' API token secret ({token_file}), given to prometheus",
                  f"not /run/secrets/<that secret, attached to prometheus>: {bad}")
            # the services answer 421 to a Host they do not know: every
            # name Prometheus scrapes a service by is in its ALLOWED_HOSTS
            bad = []
            for t in targets:
                host = t.rsplit(":", 1)[0]
                allowed = [h.strip() for h in env_of(services.get(host, {})).get("ALLOWED_HOSTS", "").split(",")]
                if host not in allowed:
                    bad.append(f"{host}: ALLOWED_HOSTS={allowed}")
            check(targets and not bad, "every service Prometheus scrapes by name lists that name in ALLOWED_HOSTS",
                  "; ".join(bad))

    # Grafana: datasource -> the prometheus service; dashboards provider path is mounted
    gr = services.get("grafana")
    check(gr is not None, "a grafana service", "missing")
    if gr:
        mounts = {t: os.path.normpath(s) for s, t, typ in (volume_target(v) for v in gr.get("volumes") or [])
                  if typ == "bind"}
        ds_dir = mounts.get("/etc/grafana/provisioning/datasources")
        db_dir = mounts.get("/etc/grafana/provisioning/dashboards")
        check(ds_dir == "deploy/grafana/provisioning/datasources" and db_dir == "deploy/grafana/provisioning/dashboards",
              "grafana mounts deploy/grafana/provisioning/{datasources,dashboards}", f"{ds_dir} {db_dir}")
        if ds_dir and db_dir:
            for f in sorted(os.listdir(os.path.join(src, ds_dir))):
                for d in yaml.safe_load(open(os.path.join(src, ds_dir, f))).get("datasources") or []:
                    m = re.match(r"https?://([^:/]+)(?::(\d+))?", d.get("url", ""))
                    check(m and m.group(1) in services, f"datasource {d.get('name')}: {d.get('url')} is a compose service",
                          "unknown host")
            for f in sorted(os.listdir(os.path.join(src, db_dir))):
                for p in yaml.safe_load(open(os.path.join(src, db_dir, f))).get("providers") or []:
                    path = (p.get("options") or {}).get("path")
                    hp = mounts.get(path)
                    ok = hp is not None and any(n.endswith(".json") for n in os.listdir(os.path.join(src, hp)))
                    check(ok, f"dashboard provider {p.get('name')}: {path} is mounted from the tree with dashboards",
                          f"{path} <- {hp}")


# ---- the dashboard -------------------------------------------------------

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
            "offset", "inf", "nan", "atan2"}
AGGREGATIONS = {"sum", "avg", "min", "max", "count", "group", "stddev", "stdvar", "topk", "bottomk", "quantile",
                "count_values", "limitk", "limit_ratio"}
# made by Prometheus at scrape time, never in a /metrics body
SYNTHETIC = {"up": {"job", "instance"}, "scrape_duration_seconds": {"job", "instance"},
             "scrape_samples_scraped": {"job", "instance"}}
TARGET_LABELS = {"job", "instance"}
SUBST = {"__rate_interval": "20s", "__interval": "5s", "__range": "1m", "__range_s": "60"}


def substitute(expr, variables):
    """the Grafana variables of expr replaced by values a Prometheus accepts"""
    def rep(m):
        name = m.group(1) or m.group(2)
        if name in SUBST:
            return SUBST[name]
        v = variables.get(name)
        if v is None:
            return m.group(0)
        return v
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", rep, expr)


def variables_of(dash):
    vs = {}
    for v in (dash.get("templating") or {}).get("list") or []:
        if v.get("type") == "textbox" or v.get("type") == "constant":
            vs[v["name"]] = str(v.get("query") or (v.get("current") or {}).get("value") or "")
        else:
            vs[v["name"]] = v.get("allValue") or ".*"
    return vs


def promql_refs(expr):
    """(selectors, grouping labels): selectors are (metric, [labels matched])"""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    e = re.sub(r"\[[^\]]*\]", "", e)                     # ranges and subqueries
    e = re.sub(r"\boffset\s+-?\w+", " ", e)
    grouping = []
    for m in re.finditer(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", e):
        grouping += [x.strip() for x in m.group(2).split(",") if x.strip()]
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    sels = []

    def sel(m):
        labels = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", m.group(2))
        name = m.group(1)
        if not name:
            names = re.findall(r'__name__\s*=\s*""', m.group(2))
            name = "__name__" if names else None
        if name and name not in AGGREGATIONS:
            sels.append((name, [l for l in labels if l != "__name__"]))
        return " "
    e = re.sub(r"([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{([^}]*)\}", sel, e)
    for m in re.finditer(r"(?<![\w.$])([A-Za-z_:][A-Za-z0-9_:]*)\s*(\()?", e):
        name, call = m.group(1), m.group(2)
        if call or name.lower() in KEYWORDS or name in AGGREGATIONS:
            continue
        sels.append((name, []))
    return sels, grouping


def parse_metrics(paths):
    """metric sample name -> set of label names, over every /metrics body"""
    names = {}
    for p in paths:
        for line in open(p):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            m = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?\s", line)
            if not m:
                continue
            labels = set(re.findall(r'([A-Za-z_][A-Za-z0-9_]*)="', m.group(3) or ""))
            names.setdefault(m.group(1), set()).update(labels)
    return names


def all_panels(panels):
    for p in panels:
        yield p
        yield from all_panels(p.get("panels") or [])


def dashboard(dash_path, ds_path, metric_paths):
    try:
        dash = json.load(open(dash_path))
        check(True, "dashboard JSON parses")
    except ValueError as e:
        check(False, "dashboard JSON parses", str(e))
        return
    uids = {d.get("uid") for d in yaml.safe_load(open(ds_path)).get("datasources") or []}
    check(bool(dash.get("uid")) and bool(dash.get("title")), "dashboard has a uid and a title", "")
    panels = list(all_panels(dash.get("panels") or []))
    ids = [p.get("id") for p in panels]
    check(len(ids) == len(set(ids)) and None not in ids, f"panel ids are unique ({len(ids)} panels)", f"{ids}")
    bad = [p.get("title") for p in panels
           if not (p.get("gridPos") and 0 <= p["gridPos"].get("x", -1) and p["gridPos"]["x"] + p["gridPos"].get("w", 99) <= 24)]
    check(not bad, "every panel has a gridPos inside 24 columns", f"{bad}")
    variables = variables_of(dash)
    known = parse_metrics(metric_paths)
    for k, v in SYNTHETIC.items():
        known.setdefault(k, set()).update(v)

    bad_ds, no_expr, unknown_vars = [], [], []
    data_panels = [p for p in panels if p.get("type") != "row"]
    for p in data_panels:
        if (p.get("datasource") or {}).get("uid") not in uids:
            bad_ds.append(p.get("title"))
        if not p.get("targets"):
            no_expr.append(p.get("title"))
        for t in p.get("targets") or []:
            if (t.get("datasource") or p.get("datasource") or {}).get("uid") not in uids:
                bad_ds.append(f"{p.get('title')}/{t.get('refId')}")
            if not (t.get("expr") or "").strip():
                no_expr.append(f"{p.get('title')}/{t.get('refId')}")
            for v in re.findall(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", t.get("expr") or ""):
                name = v[0] or v[1]
                if name not in variables and name not in SUBST:
                    unknown_vars.append(f"{p.get('title')}: ${name}")
    check(not bad_ds, f"every panel and target uses the provisioned datasource uid {sorted(uids)}", f"{bad_ds}")
    check(not no_expr, "every data panel has targets, every target a PromQL expr", f"{no_expr}")
    check(not unknown_vars, "every $variable in an expr is a dashboard variable or a Grafana built-in", f"{unknown_vars}")

    def verdict(name, refs, grouping, what):
        missing = [m for m, _ in refs if m not in known]
        bad_labels = [f"{m}{{{l}}}" for m, ls in refs if m in known for l in ls
                      if l not in known[m] and l not in TARGET_LABELS]
        have = set().union(*[known.get(m, set()) for m, _ in refs]) | TARGET_LABELS if refs else TARGET_LABELS
        bad_group = [g for g in grouping if g not in have] if not missing else []
        if missing or bad_labels or bad_group or not refs:
            out(FAIL, name, f"{what}: unknown metrics {missing}, labels {bad_labels}, grouping {bad_group}"
                + ("" if refs else ", no metric referenced"))
        else:
            out(OK, name)

    for p in data_panels:
        for t in p.get("targets") or []:
            expr = substitute(t.get("expr") or "", variables)
            refs, grouping = promql_refs(expr)
            names = sorted({m for m, _ in refs})
            verdict(f"panel '{p.get('title')}' {t.get('refId')}: {', '.join(names)} in the real /metrics, with their labels",
                    refs, grouping, expr)
    for v in (dash.get("templating") or {}).get("list") or []:
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\(\s*([A-Za-z_:][A-Za-z0-9_:{}=~\"., ]*?)\s*,\s*(\w+)\s*\)\s*", q or "")
        if not m:
            out(FAIL, f"variable ${v.get('name')}: label_values(metric, label)", repr(q))
            continue
        refs, _ = promql_refs(m.group(1))
        refs = [(n, ls + [m.group(2)]) for n, ls in refs]
        verdict(f"variable ${v.get('name')}: {q}", refs, [], q)


def queries(dash_path):
    dash = json.load(open(dash_path))
    variables = variables_of(dash)
    for p in all_panels(dash.get("panels") or []):
        for t in p.get("targets") or []:
            if t.get("expr"):
                print(f"{p.get('title')} / {t.get('refId')}\t{substitute(t['expr'], variables)}")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "compose":
        compose(*sys.argv[2:5])
    elif cmd == "dashboard":
        dashboard(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif cmd == "queries":
        queries(sys.argv[2])
    else:
        sys.exit(f"usage: {sys.argv[0]} compose|dashboard|queries ...")
PY

# ---- docker-compose.yml ---------------------------------------------------
: >"$TMP/empty.env" # a developer's .env (make compose) must not change the result
DC=(docker-compose --env-file "$TMP/empty.env" --project-directory "$SRC_DIR" -f "$SRC_DIR/docker-compose.yml")
out=$(env -u API_TOKEN "${DC[@]}" config -q 2>&1)
ok $? "docker-compose config -q accepts docker-compose.yml with no API_TOKEN in the environment" ||
  echo "$out" | sed 's/^/#   /'
# secrets come from files: a value in the environment reaches nothing
SENTINEL=sentinel-$RANDOM$RANDOM
env API_TOKEN="$SENTINEL" SEED_PASSWORD="$SENTINEL" GF_SECURITY_ADMIN_PASSWORD="$SENTINEL" \
  POSTGRES_PASSWORD="$SENTINEL" DATABASE_URL="postgres://u:$SENTINEL@h/d" "${DC[@]}" config >"$TMP/resolved.yml" 2>"$TMP/resolved.err"
[ -s "$TMP/resolved.yml" ] && ! grep -q "$SENTINEL" "$TMP/resolved.yml"
ok $? "API_TOKEN, DATABASE_URL or a password in the environment does not reach the resolved configuration"
checks compose "$SRC_DIR/docker-compose.yml" "$TMP/resolved.yml" "$SRC_DIR"
if git -C "$SRC_DIR" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$SRC_DIR" check-ignore -q secrets/api_token && git -C "$SRC_DIR" check-ignore -q secrets/grafana_admin_password
else
  grep -qxE '/?secrets/?' "$SRC_DIR/.gitignore"
fi
ok $? "./secrets is git-ignored"
grep -qx secrets "$SRC_DIR/.dockerignore" && grep -qx secrets "$SRC_DIR/deploy/docker/Dockerfile.dockerignore"
ok $? "./secrets is out of the services' build context (.dockerignore, deploy/docker/Dockerfile.dockerignore)"

# ---- linters ---------------------------------------------------------------
if command -v hadolint >/dev/null; then
  for f in deploy/docker/Dockerfile deploy/dovecot/Dockerfile; do
    out=$(hadolint "$SRC_DIR/$f" 2>&1)
    ok $? "hadolint $f" || echo "$out" | sed 's/^/#   /'
  done
else
  ok 0 "hadolint deploy/docker/Dockerfile deploy/dovecot/Dockerfile # SKIP hadolint is not on the PATH"
fi
if command -v shellcheck >/dev/null; then
  out=$(shellcheck "$SRC_DIR/deploy/dovecot/seed-mailbox.sh" 2>&1)
  ok $? "shellcheck deploy/dovecot/seed-mailbox.sh" || echo "$out" | sed 's/^/#   /'
else
  ok 0 "shellcheck deploy/dovecot/seed-mailbox.sh # SKIP shellcheck is not installed"
fi

# ---- the seed mailbox, outside Docker ---------------------------------------
# As root: as nobody (setpriv), the way the image runs it as vmail; else as
# the current user. SHARED_GID = the user's group, so the seed password gets
# the group-readable mode it gets in the image.
SEED=$TMP/seed
IP=$(freeport)
mkdir -p "$SEED"
if [ "$(id -u)" = 0 ]; then
  command -v setpriv >/dev/null || { echo "Bail out! setpriv (util-linux) is needed as root"; exit 1; }
  AS=(setpriv --reuid=nobody --regid="$(id -gn nobody)" --clear-groups)
  chown nobody:"$(id -gn nobody)" "$SEED"
  SGID=$(id -g nobody)
else
  AS=()
  SGID=$(id -g)
fi
seed_env() { # seed_env [VAR=VALUE...] CMD... - as the seed mailbox's user, with its settings
  "${AS[@]}" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$SEED" DOVECOT_PORT="$IP" DOVECOT_LISTEN=127.0.0.1 \
    DOVECOT_CERT_NAMES="dovecot localhost" DOVECOT_CONF="$SEED/dovecot.conf" DATA_DIR="$SEED/data" \
    MAIL_DIR="$SEED/mail" RUN_DIR="$SEED/run" SHARED_DIR="$SEED/shared" SHARED_GID="$SGID" "$@"
}
SEED_SH=$SRC_DIR/deploy/dovecot/seed-mailbox.sh
start_seed() {
  seed_env "$SEED_SH" >>"$SEED/out.log" 2>&1 </dev/null &
  SEED_PID=$!
  track "$SEED_PID"
  wait_for 20 seed_env "$SEED_SH" healthcheck
}
start_seed
ok $? "seed-mailbox.sh (the dovecot image's entrypoint) starts unprivileged and passes its healthcheck (STARTTLS verified for 'dovecot', LOGIN)" ||
  sed 's/^/#   /' "$SEED/out.log" | tail -20
eq "server key mode 600, CA key discarded" \
  "$(stat -c %a "$SEED/data/tls/server.key") $(find "$SEED" -name 'ca.key' | wc -l)" "600 0"
eq "shared: ca.pem 644, seed_password 640 (group SHARED_GID)" \
  "$(stat -c '%a' "$SEED/shared/ca.pem") $(stat -c '%a %g' "$SEED/shared/seed_password")" "644 640 $SGID"
san=$(openssl x509 -noout -ext subjectAltName -in "$SEED/data/tls/server.pem" 2>/dev/null | tail -1 | tr -d ' ')
eq "the certificate names DOVECOT_CERT_NAMES" "$san" "DNS:dovecot,DNS:localhost"
openssl verify -purpose sslserver -CAfile "$SEED/shared/ca.pem" "$SEED/data/tls/server.pem" >/dev/null 2>&1
ok $? "the certificate is a TLS server certificate signed by the shared CA"
seed_env DOVECOT_CERT_NAMES=wrong.test "$SEED_SH" healthcheck >/dev/null 2>&1
ok $((!$?)) "the healthcheck fails for a name the certificate does not carry"
ca_before=$(sha256sum <"$SEED/shared/ca.pem")
pw_before=$(sha256sum <"$SEED/shared/seed_password")
stop_dovecot "$SEED_PID" >/dev/null 2>&1
start_seed
ok $? "seed mailbox restarts"
eq "a restart keeps the CA and the password" \
  "$(sha256sum <"$SEED/shared/ca.pem") $(sha256sum <"$SEED/shared/seed_password")" "$ca_before $pw_before"

# ---- make compose / compose-down, with stub docker and docker-compose -----
# (first: the services and Prometheus below read the secret file it makes)
STUB=$TMP/stub
PROJ=$TMP/proj
mkdir -p "$STUB" "$PROJ"
cat >"$STUB/docker" <<'EOS'
#!/bin/sh
echo "docker $*" >>"$STUB_LOG"
[ "$1" = compose ] && [ "${DOCKER_COMPOSE_V2:-0}" = 0 ] && exit 1
exit 0
EOS
cat >"$STUB/docker-compose" <<'EOS'
#!/bin/sh
echo "docker-compose $*" >>"$STUB_LOG"
EOS
chmod 755 "$STUB/docker" "$STUB/docker-compose"
mk() { env -u API_TOKEN PATH="$STUB:$PATH" STUB_LOG="$TMP/stub.log" "$@" make -s -f "$SRC_DIR/Makefile" -C "$PROJ" "${MKT[@]}" >/dev/null 2>&1; }
SECRETS=$PROJ/secrets
RANDOM_SECRETS=(api_token grafana_admin_password postgres_password warmup_db_password health_db_password)
ALL_SECRETS=("${RANDOM_SECRETS[@]}" warmup_database_url health_database_url)
modes() { (cd "$SECRETS" 2>/dev/null && stat -c %a . "${ALL_SECRETS[@]}" 2>&1 | tr '\n' ' '); }
sums() { local f; for f in "${ALL_SECRETS[@]}"; do sha256sum <"$SECRETS/$f" || echo missing; done 2>/dev/null; }
: >"$TMP/stub.log"
MKT=(compose)
mk
ok $? "make compose (stubs) succeeds"
eq "without 'docker compose' it runs docker-compose up -d --build" "$(grep -v '^docker compose version' "$TMP/stub.log")" "docker-compose up -d --build"
eq "it makes ./secrets 0700 with ${ALL_SECRETS[*]} 0644 (compose mounts them with that mode)" \
  "$(modes)" "700 644 644 644 644 644 644 644 "
eq "${RANDOM_SECRETS[*]}: each holds 48 random hex digits, no newline" \
  "$(for f in "${RANDOM_SECRETS[@]}"; do grep -cxE '[0-9a-f]{48}' "$SECRETS/$f"; wc -c <"$SECRETS/$f"; done | tr '\n' ' ')" \
  "1 48 1 48 1 48 1 48 1 48 "
eq "they are five distinct values (the Grafana and database passwords are not the API token)" \
  "$(for f in "${RANDOM_SECRETS[@]}"; do cat "$SECRETS/$f" 2>/dev/null; echo; done | sort -u | grep -c .)" 5
# the URL each service reads as DATABASE_URL_FILE: its role and database on
# the compose service postgres, with the password of secrets/<role>_db_password
# (the one postgres-init.sql gives the role); no TLS on the internal network
for r in warmup health; do
  eq "secrets/${r}_database_url: role $r, its password, database $r on the service postgres" \
    "$(sed "s/$(cat "$SECRETS/${r}_db_password" 2>/dev/null || echo none)/PW/" "$SECRETS/${r}_database_url" 2>&1)" \
    "postgres://$r:PW@postgres:5432/$r?sslmode=disable"
done
eq "the URL's host is the postgres service of docker-compose.yml" \
  "$($PY -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["services"]["postgres"]["image"].split(":")[0])' "$TMP/resolved.yml")" postgres
# rendered with these files in ./secrets (the project's deploy/ linked in,
# for the build contexts): no value of theirs anywhere, no URL with a
# password in any environment
ln -sfn "$SRC_DIR/deploy" "$PROJ/deploy"
docker-compose --env-file "$TMP/empty.env" --project-directory "$PROJ" -f "$SRC_DIR/docker-compose.yml" \
  config >"$TMP/rendered.yml" 2>"$TMP/rendered.err"
$PY - "$TMP/rendered.yml" "$SECRETS" <<'PY'
import os, re, sys, yaml
text = open(sys.argv[1]).read()
values = [open(os.path.join(sys.argv[2], f)).read().strip() for f in os.listdir(sys.argv[2])]
values += [m for v in values for m in re.findall(r"://[^:/@]+:([^@/]+)@", v)]
envs = [str(v) for s in yaml.safe_load(text)["services"].values() for v in (s.get("environment") or {}).values()]
bad = [v for v in values if v and v in text] + [e for e in envs if re.search(r"://[^/\s:@]*:[^/\s@]+@", e)]
sys.exit(1 if bad or not envs else 0)
PY
ok $? "the configuration rendered with the secret files present carries none of their values, no URL with a password"
[ ! -e "$PROJ/.env" ]
ok $? "no .env written"
TOKEN_FILE=$SECRETS/api_token
before=$(sums)
: >"$TMP/stub.log"
mk DOCKER_COMPOSE_V2=1
eq "with 'docker compose' available it runs docker compose up -d --build" "$(grep -v '^docker compose version' "$TMP/stub.log")" "docker compose up -d --build"
[ "$(sums)" = "$before" ] && ! grep -q missing <<<"$before"
ok $? "a second run keeps every secret (${#ALL_SECRETS[@]})"
chmod 755 "$SECRETS"
chmod 600 "$SECRETS/api_token"
mk
eq "a run puts back the modes (0700 directory, 0644 files) and keeps the values" "$(modes) $(sums)" "700 644 644 644 644 644 644 644  $before"
# containers read a file secret through a bind mount of the file, with its
# host owner and mode: here a mount namespace stands in for one
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && unshare -m true 2>/dev/null; then
  : >"$TMP/bound"
  for u in 10001 65534 472 999; do # the services' app, prometheus, grafana, postgres
    unshare -m --propagation private sh -c 'mount --bind "$1" "$2" && exec setpriv --reuid="$3" --regid="$3" --clear-groups cat "$2"' \
      sh "$TOKEN_FILE" "$TMP/bound" "$u" >"$TMP/bound.out" 2>/dev/null
    cmp -s "$TMP/bound.out" "$TOKEN_FILE"
    ok $? "uid $u reads secrets/api_token bind-mounted, as compose mounts it into a container"
  done
  [ -s "$TOKEN_FILE" ] && ! setpriv --reuid=65534 --regid=65534 --clear-groups cat "$TOKEN_FILE" >/dev/null 2>&1
  ok $? "another host user cannot read it in ./secrets (the directory is 0700)"
else
  ok 0 "container users read the bind-mounted secret; host users cannot # SKIP needs root, setpriv and unshare -m"
fi
cp -p "$TOKEN_FILE" "$TMP/api_token.keep"
rm -rf "$SECRETS"
mk API_TOKEN=from-env
eq "API_TOKEN in the environment seeds a missing secrets/api_token" "$(cat "$SECRETS/api_token")" "from-env"
rm -rf "$SECRETS"
printf 'OTHER=1\nAPI_TOKEN=from-dotenv\n' >"$PROJ/.env"
mk
eq "an API_TOKEN in .env (earlier make compose) seeds a missing secrets/api_token; .env is left alone" \
  "$(cat "$SECRETS/api_token") $(tr '\n' ' ' <"$PROJ/.env")" "from-dotenv OTHER=1 API_TOKEN=from-dotenv "
cp -p "$TMP/api_token.keep" "$TOKEN_FILE"
: >"$TMP/stub.log"
MKT=(compose-down)
mk
eq "make compose-down runs docker-compose down" "$(grep -v '^docker compose version' "$TMP/stub.log")" "docker-compose down"

# ---- the services, with the compose loops file ------------------------------
start_broker "$TMP/broker" || { ok 1 "broker starts"; finish; exit 1; }
WP=$(freeport)
HP=$(freeport)
W=http://127.0.0.1:$WP
H=http://127.0.0.1:$HP
TOKEN=$(cat "$TOKEN_FILE")
AUTH=(-H "Authorization: Bearer $TOKEN")
# compose_env SERVICE VAR - VAR of SERVICE's environment in the resolved compose file
compose_env() { $PY -c 'import sys, yaml; print((yaml.safe_load(open(sys.argv[1]))["services"][sys.argv[2]].get("environment") or {}).get(sys.argv[3], ""))' "$TMP/resolved.yml" "$1" "$2"; }
$PY - "$SRC_DIR/deploy/compose/feedback-loops.json" "$IP" "$SEED/shared" >"$TMP/loops.json" <<'PY'
import json, os, sys
d = json.load(open(sys.argv[1]))
for e in d.values():
    if e.get("loop") == "imap":   # only what differs outside Docker: where the mailbox and its files are
        e["host"], e["port"] = "localhost", int(sys.argv[2])
        for k in ("ca_file", "password_file"):
            e[k] = os.path.join(sys.argv[3], os.path.basename(e[k]))
print(json.dumps(d))
PY

# PostgreSQL as the stack makes it: a throwaway cluster stands in for the
# postgres container. deploy/compose/postgres-init.sql runs as the superuser
# with only its /run/secrets/ paths pointed at the files make compose wrote;
# the roles it makes log in with scram-sha-256 (not the cluster's trust),
# so the URL files' passwords must be theirs; the services start with
# DATABASE_URL_FILE = those URL files, only host and port rewritten.
start_pg "$TMP/pg" compose_admin || { ok 1 "PostgreSQL starts"; finish; exit 1; }
{ echo "host all warmup,health 127.0.0.1/32 scram-sha-256"; cat "$PG_DIR/data/pg_hba.conf"; } >"$TMP/pg_hba.conf" &&
  cat "$TMP/pg_hba.conf" >"$PG_DIR/data/pg_hba.conf" && pg_sql postgres "SELECT pg_reload_conf()" >/dev/null
ok $? "PostgreSQL starts; roles warmup and health must give their password"
sed "s#/run/secrets/#$SECRETS/#g" "$SRC_DIR/deploy/compose/postgres-init.sql" >"$TMP/postgres-init.sql"
out=$(psql -X -q -w -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -f "$TMP/postgres-init.sql" 2>&1)
ok $? "deploy/compose/postgres-init.sql runs (the postgres image's first start)" || echo "$out" | sed 's/^/#   /'
eq "it makes roles warmup and health, not superusers, each owning its database" \
  "$(pg_sql postgres "SELECT string_agg(r.rolname || ':' || r.rolsuper || ':' || d.datname, ' ' ORDER BY r.rolname)
     FROM pg_roles r JOIN pg_database d ON d.datdba = r.oid WHERE r.rolname IN ('warmup', 'health')")" \
  "health:false:health warmup:false:warmup"
for r in warmup health; do
  (umask 077 && sed "s#@postgres:5432/#@127.0.0.1:$PG_PORT/#" "$SECRETS/${r}_database_url" >"$TMP/${r}_database_url")
done
pgq() { psql -X -q -w -At -c "$2" "$1" 2>/dev/null; }
eq "secrets/warmup_database_url logs in as warmup; a wrong password is refused" \
  "$(pgq "$(cat "$TMP/warmup_database_url")" "SELECT current_user") $(pgq "postgres://warmup:wrong@127.0.0.1:$PG_PORT/warmup?sslmode=disable" "SELECT 1" || echo refused)" \
  "warmup refused"
WP2=$(freeport)
W2=http://127.0.0.1:$WP2
start_warmup warmup "$WP" CHOOSEN_SMTP_CLIENT_TYPE=DRYRUN SMTP_SPOOL_DIR="$TMP/spool" MESSAGE_ID_DOMAIN=w.test \
  API_TOKEN_FILE="$TOKEN_FILE" ALLOWED_HOSTS="$(compose_env warmup-service ALLOWED_HOSTS)" \
  DATABASE_URL_FILE="$TMP/warmup_database_url"
ok $? "warmup-service starts (DRYRUN, API_TOKEN_FILE and DATABASE_URL_FILE = the secrets make compose wrote, compose's ALLOWED_HOSTS)"
start_warmup warmup2 "$WP2" CHOOSEN_SMTP_CLIENT_TYPE=DRYRUN SMTP_SPOOL_DIR="$TMP/spool2" MESSAGE_ID_DOMAIN=w.test \
  API_TOKEN_FILE="$TOKEN_FILE" ALLOWED_HOSTS="$(compose_env warmup-service-2 ALLOWED_HOSTS)" \
  DATABASE_URL_FILE="$TMP/warmup_database_url"
ok $? "warmup-service-2 starts on the same database URL"
start_health health "$HP" CHECK_INTERVAL=1 FEEDBACK_LOOPS_FILE="$TMP/loops.json" \
  API_TOKEN_FILE="$TOKEN_FILE" ALLOWED_HOSTS="$(compose_env health-service ALLOWED_HOSTS)" \
  DATABASE_URL_FILE="$TMP/health_database_url"
ok $? "health-service starts with deploy/compose/feedback-loops.json (host, port, paths rewritten), the same token, its database URL"
eq "the two warmup replicas are two live instances of one database; health's tables are in its own, owned by health" \
  "$(pg_sql warmup "SELECT count(*) FROM instances") $(pg_sql health "SELECT count(*) > 5, bool_and(tableowner = 'health') FROM pg_tables WHERE schemaname = 'public'")" \
  "2 t|t"
eq "the token of the secret file authenticates; none is refused" \
  "$(curl -s -o /dev/null -w '%{http_code}' "${AUTH[@]}" "$W/users") $(curl -s -o /dev/null -w '%{http_code}' "$W/users")" "200 401"
# Prometheus in compose scrapes http://warmup-service:8080 and health-service:8081
eq "both answer /metrics to the Host names Prometheus scrapes them by" \
  "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: warmup-service:8080" "${AUTH[@]}" "$W/metrics") $(curl -s -o /dev/null -w '%{http_code}' -H "Host: health-service:8081" "${AUTH[@]}" "$H/metrics")" "200 200"

# registered on both replicas, broadcast from the first: it reaches all four
for u in seed@seed.test a1@gmail.com a2@gmail.com b1@example.org; do
  curl -s "${AUTH[@]}" -X POST -H 'Content-Type: application/json' -d "{\"name\":\"N\",\"email_id\":\"$u\"}" "$W/register" >/dev/null
  t=$W W=$W2 W2=$t
done
eq "both replicas list the same four users" \
  "$(curl -s "${AUTH[@]}" "$W2/emailIds" | grep -o '@' | wc -l) $(curl -s "${AUTH[@]}" "$W/emailIds" | cmp -s - <(curl -s "${AUTH[@]}" "$W2/emailIds") && echo same)" \
  "4 same"
curl -s "${AUTH[@]}" -X POST -H 'Content-Type: application/json' -d '{"from":"n@w.test","subject":"s","body":"b"}' "$W/send" >/dev/null
# a sending identity paused and resumed by the operator: the identity and
# decision series the dashboard's warmup-control panels read
r=$(curl -s "${AUTH[@]}" -X POST -H 'Content-Type: application/json' -d '{"address":"ops@w.test"}' "$W/identities")
iid=$(printf '%s' "$r" | $PY -c 'import json,sys; print(json.load(sys.stdin)["id"])' 2>/dev/null)
eq "an identity paused and resumed (its decisions counted)" \
  "$(curl -s -o /dev/null -w '%{http_code}' "${AUTH[@]}" -X POST "$W/identities/$iid/pause") $(curl -s -o /dev/null -w '%{http_code}' "${AUTH[@]}" -X POST "$W/identities/$iid/resume")" "200 200"
tracked() { [ "$(curl -s "${AUTH[@]}" "$H/mail_stats?email_id=1" | $PY -c 'import json,sys; print(json.load(sys.stdin).get("tracked"))' 2>/dev/null)" = 4 ]; }
wait_for 60 tracked
ok $? "the broadcast is tracked: 4 copies"
f=$(grep -l 'Delivered-To: seed@seed.test' "$TMP"/spool*/*.eml 2>/dev/null | head -1)
[ -n "$f" ] && seed_env "$SEED_SH" put INBOX <"$f" >/dev/null 2>&1
ok $? "seed-mailbox.sh put INBOX stores the real copy for seed@seed.test"
seedj() { curl -s "${AUTH[@]}" "$H/domains" | $PY -c 'import json,sys; d=[x for x in json.load(sys.stdin) if x["domain"]=="seed.test"][0]; print(d["loop"], d["delivered"], d["spam"], d["last_error"])' 2>/dev/null; }
seed_delivered() { [ "$(seedj)" = "imap 1 0 None" ]; }
wait_for 30 seed_delivered
ok $? "health-service's IMAP loop verifies the seed certificate and finds the copy: seed.test delivered 1, no error" ||
  echo "#   /domains seed.test: $(seedj)"
sleep 2 # a few more rounds for the round-duration histograms

# ---- the dashboard against the real /metrics -------------------------------
curl -s "${AUTH[@]}" "$W/metrics" >"$TMP/warmup.metrics"
curl -s "${AUTH[@]}" "$H/metrics" >"$TMP/health.metrics"
[ -s "$TMP/warmup.metrics" ] && [ -s "$TMP/health.metrics" ]
ok $? "both services serve /metrics"
DASH=$SRC_DIR/deploy/grafana/dashboards/email-warmup.json
checks dashboard "$DASH" "$SRC_DIR/deploy/grafana/provisioning/datasources/prometheus.yml" \
  "$TMP/warmup.metrics" "$TMP/health.metrics"

# ---- a real Prometheus evaluates every panel expression ---------------------
if command -v prometheus >/dev/null; then
  PP=$(freeport)
  P=http://127.0.0.1:$PP
  cat >"$TMP/prometheus.yml" <<EOC
global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: warmup-service
    authorization: {type: Bearer, credentials_file: $TOKEN_FILE}
    static_configs: [{targets: ["127.0.0.1:$WP"]}]
  - job_name: health-service
    authorization: {type: Bearer, credentials_file: $TOKEN_FILE}
    static_configs: [{targets: ["127.0.0.1:$HP"]}]
EOC
  prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/prom" \
    --web.listen-address="127.0.0.1:$PP" >"$TMP/prometheus.log" 2>&1 </dev/null &
  PROM_PID=$!
  track $PROM_PID
  pq() { curl -s -G --data-urlencode "query=$1" "$P/api/v1/query"; }
  scraped() { [ "$(pq 'sum(count_over_time(up[1m]))' | $PY -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(int(float(r[0]["value"][1])) if r else 0)' 2>/dev/null)" -ge 12 ]; }
  wait_for 60 scraped
  ok $? "Prometheus scrapes both services with the bearer token (6+ scrapes each)" || tail -5 "$TMP/prometheus.log" | sed 's/^/#   /'
  $PY "$TMP/compose_check.py" queries "$DASH" >"$TMP/queries.tsv"
  ok $? "the dashboard's expressions are listed ($(wc -l <"$TMP/queries.tsv"))"
  while IFS=$'\t' read -r name expr; do
    r=$(pq "$expr" | $PY -c 'import json,sys; j=json.load(sys.stdin); print(j["status"], len(j["data"]["result"]) if j["status"] == "success" else j.get("error"))' 2>&1)
    case $r in
      "success 0") ok 1 "Prometheus: '$name' returns data"; echo "#   empty: $expr" ;;
      success\ *) ok 0 "Prometheus: '$name' returns data" ;;
      *) ok 1 "Prometheus: '$name' returns data"; echo "#   $r: $expr" ;;
    esac
  done <"$TMP/queries.tsv"
  stop_pid "$PROM_PID" 10
else
  ok 0 "Prometheus evaluates every panel expression # SKIP prometheus is not installed"
fi
stop_named health
stop_named warmup2
stop_named warmup
stop_pid "$BROKER_PID"
stop_pg
stop_dovecot "$SEED_PID" >/dev/null 2>&1

finish
