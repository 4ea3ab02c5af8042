#!/usr/bin/env python3
"""Load generator for scripts/rolling-restart.sh: full enrollment journeys in a loop.

Standard library only (threads and http.client). Every client is one thread on one
keep-alive connection to BASE (the proxy in front of the `ezenroll serve` copies) and
runs journeys until told to stop:

    POST /customers (admin token) -> POST /enrollments (the customer's own token)
    -> POST /enrollments/{id}/document -> long poll while DocumentRequested
    -> POST /enrollments/{id}/proposal (pays) -> POST /enrollments/{id}/withdrawal
    -> long poll while WithdrawalRequested, until Withdrawn

Every write carries a fresh Idempotency-Key. A request that fails in a way a proxy
produces when a copy goes away (connection error, 502, 503, 504) is counted as failed
and sent again, with the same key for a write, after a short back-off (Retry-After is
honoured, capped at 1 s), so a retry never doubles a write; each such resend counts as a
retry. Any other answer a step did not expect (a 409, a 500, a status it cannot be in) is
counted per step with the problem's `type` and ends that journey; the client starts the
next one.

Tokens are minted here, HS256 over the claims the server requires (sub, role, exp, iat),
with the secret in EZENROLL_JWT_SECRET.

The orchestrating script talks to this process through a markers file: each line is
`<unix time> <name> [key=value ...]`. This process appends `load-started` once its
clients run; it watches the file for `kill` (starts the probe: every PROBE_INTERVAL it
GETs a fixed set of enrollments made before the load, until `phase2-end`) and for `stop`
(stops the clients, prints the summary). Exit status: 0, or 1 when a request failed
(5xx or connection error, load or probe) and ALLOW_FAILURES is not 1, or 2 when the run
itself could not be set up or completed no journey at all.

    EZENROLL_JWT_SECRET=... scripts/journeys.py --base http://127.0.0.1:8080 \
        --markers /tmp/x/markers --clients 16 [--json /tmp/x/summary.json]
"""

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import statistics
import sys
import threading
import time
import urllib.parse
import uuid
from collections import Counter, defaultdict

RETRY_STATUSES = (502, 503, 504)
MAX_RETRIES = 40  # about 30 s of back-off at most; then the journey is given up
PROBLEM_PREFIX = "https://ezenroll.dev/problems/"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint(secret: str, sub: str, role: str, ttl: int = 6 * 3600) -> str:
    """An HS256 JWT as the server checks it: sub, role, exp, iat."""
    now = int(time.time())
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = {"sub": sub, "role": role, "exp": now + ttl, "iat": now}
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


class Stopped(Exception):
    """The run is over: the journey in hand is dropped, not counted."""


class Abandoned(Exception):
    """An unexpected answer or too many retries: this journey ends here."""


class Stats:
    """Per-second counters (by wall-clock second since the load started) and events."""

    def __init__(self, t0: float):
        self.t0 = t0
        self.lock = threading.Lock()
        self.bins = defaultdict(Counter)  # second -> Counter(sent, failed, retries, journeys, unexpected)
        self.failures = []  # (t, step, kind, served_by, "METHOD path sent T")
        self.unexpected = []  # (t, step, status, type, served_by)
        self.gave_up = []  # (t, step)
        self.full_polls = []  # (t, step, served_by): long polls that ran their whole wait

    def sec(self, t: float) -> int:
        return int(t - self.t0)

    def add(self, t: float, name: str, n: int = 1):
        with self.lock:
            self.bins[self.sec(t)][name] += n

    def failure(self, t, step, kind, served_by, what=""):
        with self.lock:
            self.bins[self.sec(t)]["failed"] += 1
            self.failures.append((t, step, kind, served_by, what))

    def odd(self, t, step, status, kind, served_by):
        with self.lock:
            self.bins[self.sec(t)]["unexpected"] += 1
            self.unexpected.append((t, step, status, kind, served_by))


class Answer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        self._json = None

    def json(self):
        if self._json is None:
            try:
                self._json = json.loads(self.body or b"null")
            except ValueError:
                self._json = {}
        return self._json

    def problem_type(self) -> str:
        doc = self.json()
        kind = doc.get("type", "") if isinstance(doc, dict) else ""
        if kind.startswith(PROBLEM_PREFIX):
            kind = kind[len(PROBLEM_PREFIX):]
        return kind or "-"

    def field(self, name):
        doc = self.json()
        return doc.get(name) if isinstance(doc, dict) else None


class Conn:
    """One keep-alive HTTP/1.1 connection, reopened after any failure."""

    def __init__(self, host, port, timeout):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = None

    def request(self, method, path, body, headers):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
            data = resp.read()
            answer = Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
            if resp.will_close:
                self.close()
            return answer
        except BaseException:
            self.close()
            raise

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None


class Client(threading.Thread):
    def __init__(self, n, cfg, stats, stop):
        super().__init__(name=f"client-{n}", daemon=True)
        self.n, self.cfg, self.stats, self.stop = n, cfg, stats, stop
        self.conn = Conn(cfg.host, cfg.port, cfg.wait_seconds + 35)
        self.admin = cfg.admin_token

    # -- one request, retried on the failures a proxy shows while a copy goes away

    def call(self, step, method, path, token, body=None, write=False):
        headers = {"Authorization": f"Bearer {token}"}
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        if write:
            headers["Idempotency-Key"] = f"rr-{uuid.uuid4()}"
        attempt = 0
        while True:
            if self.stop.is_set():
                raise Stopped()
            now = time.time()
            self.stats.add(now, "sent")
            if attempt:
                self.stats.add(now, "retries")
            wait = None
            try:
                answer = self.conn.request(method, path, data, headers)
            except (OSError, http.client.HTTPException) as e:
                self.stats.failure(time.time(), step, f"conn:{type(e).__name__}", "-",
                                   f"{method} {path} sent {now - self.stats.t0:.3f}")
            else:
                if answer.status < 500:
                    return answer
                served = answer.headers.get("x-served-by", "-")
                kind = f"{answer.status}:{answer.problem_type()}"
                self.stats.failure(time.time(), step, kind, served,
                                   f"{method} {path} sent {now - self.stats.t0:.3f}")
                if answer.status not in RETRY_STATUSES:
                    self.stats.odd(time.time(), step, answer.status, answer.problem_type(), served)
                    raise Abandoned()
                try:
                    wait = min(float(answer.headers.get("retry-after", "")), 1.0)
                except ValueError:
                    wait = None
            attempt += 1
            if attempt > MAX_RETRIES:
                with self.stats.lock:
                    self.stats.gave_up.append((time.time(), step))
                raise Abandoned()
            if wait is None:
                wait = min(0.05 * (2 ** min(attempt - 1, 5)), 1.0)
            if self.stop.wait(wait):
                raise Stopped()

    def expect(self, step, answer, statuses, states=None):
        status_ok = answer.status in statuses
        state = answer.field("status")
        if status_ok and (states is None or state in states):
            return answer
        if status_ok:
            kind = f"status:{state}"
        else:
            kind = answer.problem_type()
            current = answer.field("currentStatus")
            if current:
                kind += f" (currentStatus {current})"
        self.stats.odd(time.time(), step, answer.status, kind,
                       answer.headers.get("x-served-by", "-"))
        raise Abandoned()

    def wait_while(self, step, eid, token, waiting, wanted):
        """Long polls while the enrollment is `waiting` until it is `wanted`.

        A 200 naming another status (one the enrollment has left: a stale read) is
        counted as unexpected and polled again after a short pause, as a patient client
        would; a poll that ran its whole waitSeconds is counted too. Past step_timeout
        the journey is 'stuck' and ends."""
        deadline = time.time() + self.cfg.step_timeout
        path = f"/enrollments/{eid}?waitWhileStatus={waiting}&waitSeconds={self.cfg.wait_seconds}"
        while True:
            started = time.time()
            answer = self.call(step, "GET", path, token)
            self.expect(step, answer, (200,))
            state = answer.field("status")
            if state == wanted:
                return
            now = time.time()
            served = answer.headers.get("x-served-by", "-")
            if state != waiting:
                self.stats.odd(now, step, 200, f"status:{state}", served)
                if self.stop.wait(0.1):
                    raise Stopped()
            elif now - started >= self.cfg.wait_seconds - 0.5:
                self.stats.add(now, "full_polls")
                with self.stats.lock:
                    self.stats.full_polls.append((now, step, served))
            if time.time() > deadline:
                self.stats.odd(time.time(), step, 200, f"stuck:{state}", served)
                raise Abandoned()

    def journey(self):
        cfg = self.cfg
        customer = {"name": f"부하 {self.n}", "birthDate": "1986-05-01", "gender": "male",
                    "mobilePhone": "010-1234-5678"}
        a = self.expect("customer", self.call("customer", "POST", "/customers", self.admin,
                                              customer, write=True), (200, 201))
        cno = a.field("customerNo")
        token = mint(cfg.secret, cno, "customer")
        plan = {"customerNo": cno, "productCode": "EZ-TERM", "sumInsured": 100000000,
                "coveragePeriod": 20, "paymentPeriod": 20, "paymentCycle": "monthly"}
        a = self.expect("enrollment", self.call("enrollment", "POST", "/enrollments", token,
                                                plan, write=True), (201,), ("Planned",))
        eid = a.field("id")
        base = f"/enrollments/{eid}"
        a = self.expect("document", self.call("document", "POST", f"{base}/document", token,
                                              write=True),
                        (202,), ("DocumentRequested", "DocumentIssued"))
        if a.field("status") != "DocumentIssued":
            self.wait_while("wait-document", eid, token, "DocumentRequested", "DocumentIssued")
        self.expect("proposal", self.call("proposal", "POST", f"{base}/proposal", token,
                                          {"paymentMethod": "card"}, write=True),
                    (200,), ("Contracted",))
        a = self.expect("withdrawal", self.call("withdrawal", "POST", f"{base}/withdrawal",
                                                token, write=True),
                        (202,), ("WithdrawalRequested", "Withdrawn"))
        if a.field("status") != "Withdrawn":
            self.wait_while("wait-withdrawn", eid, token, "WithdrawalRequested", "Withdrawn")
        self.stats.add(time.time(), "journeys")

    def run(self):
        while not self.stop.is_set():
            try:
                self.journey()
            except Abandoned:
                self.stats.add(time.time(), "abandoned")
            except Stopped:
                break
            except Exception as e:  # a bug here, not in the server: say so and go on
                print(f"journeys.py: client {self.n}: {type(e).__name__}: {e}", file=sys.stderr)
                self.stats.add(time.time(), "abandoned")
                if self.stop.wait(0.5):
                    break
        self.conn.close()


class Probe:
    """From a kill on, GETs each of a fixed set of enrollments every `interval`."""

    def __init__(self, cfg, ids, started_at, threads=4):
        self.cfg, self.ids, self.started_at = cfg, ids, started_at
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.sent = 0
        self.failed = 0
        self.kinds = Counter()
        self.last_fail = {}  # id -> time of its last failed probe
        self.first_ok_after = {}  # id -> first 200 after its last failure (or at all)
        self.rounds = 0
        chunks = [ids[i::threads] for i in range(threads)]
        self.threads = [threading.Thread(target=self.loop, args=(c,), daemon=True,
                                         name=f"probe-{i}") for i, c in enumerate(chunks) if c]

    def start(self):
        for t in self.threads:
            t.start()

    def loop(self, ids):
        conn = Conn(self.cfg.host, self.cfg.port, 5)
        headers = {"Authorization": f"Bearer {self.cfg.admin_token}"}
        tick = 0
        interval = self.cfg.probe_interval
        while not self.stop.is_set():
            for eid in ids:
                t = time.time()
                ok, kind = False, None
                try:
                    a = conn.request("GET", f"/enrollments/{eid}", None, headers)
                    ok = a.status == 200
                    if not ok:
                        kind = f"{a.status}:{a.problem_type()}@{a.headers.get('x-served-by', '-')}"
                except (OSError, http.client.HTTPException) as e:
                    kind = f"conn:{type(e).__name__}"
                with self.lock:
                    self.sent += 1
                    if ok:
                        self.first_ok_after.setdefault(eid, time.time())
                    else:
                        self.failed += 1
                        self.kinds[kind] += 1
                        self.last_fail[eid] = t
                        self.first_ok_after.pop(eid, None)
            with self.lock:
                self.rounds += 1
            tick += 1
            next_at = self.started_at + tick * interval
            delay = next_at - time.time()
            if delay < 0:  # behind: skip to the next tick to come
                tick += int(-delay // interval) + 1
                delay = self.started_at + tick * interval - time.time()
            if self.stop.wait(max(delay, 0)):
                break
        conn.close()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)
        with self.lock:
            all_ok = len(self.first_ok_after) == len(self.ids)
            recovered = max(self.first_ok_after.values()) - self.started_at if all_ok else None
            return {
                "sent": self.sent,
                "failed": self.failed,
                "kinds": dict(self.kinds.most_common()),
                "ids": len(self.ids),
                "ids_that_failed": len(self.last_fail),
                "recovered_after_s": recovered,
                "first_failure_s": (min(self.last_fail.values()) - self.started_at) if self.last_fail else None,
                "last_failure_s": (max(self.last_fail.values()) - self.started_at) if self.last_fail else None,
            }


class Markers:
    """Reads the markers file the orchestrating script appends to."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.items = []  # (t, name, {k: v})

    def poll(self):
        new = []
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return new
        end = chunk.rfind(b"\n")
        if end < 0:
            return new
        self.offset += end + 1
        for line in chunk[: end + 1].decode().splitlines():
            parts = line.split()
            if len(parts) < 2:
                continue
            attrs = dict(p.split("=", 1) for p in parts[2:] if "=" in p)
            item = (float(parts[0]), parts[1], attrs)
            self.items.append(item)
            new.append(item)
        return new

    def first(self, name):
        return next((m for m in self.items if m[1] == name), None)


def append_marker(path, name, **attrs):
    extra = "".join(f" {k}={v}" for k, v in attrs.items())
    with open(path, "a") as f:
        f.write(f"{time.time():.3f} {name}{extra}\n")


def setup_probe_ids(cfg, count):
    """Enrollments for the probe, made through the proxy before the load starts."""
    stats = Stats(time.time())
    client = Client(0, cfg, stats, threading.Event())
    ids = []
    per_customer = 8  # 8 x 100,000,000 stays under EZ-TERM's cumulative limit
    cno = None
    token = None
    while len(ids) < count:
        if len(ids) % per_customer == 0:
            a = client.call("probe-setup", "POST", "/customers", cfg.admin_token,
                            {"name": "프로브", "birthDate": "1980-01-01", "gender": "female",
                             "mobilePhone": "010-0000-0000"}, write=True)
            if a.status not in (200, 201):
                raise RuntimeError(f"probe setup: POST /customers answered {a.status}: {a.body[:300]!r}")
            cno = a.field("customerNo")
            token = mint(cfg.secret, cno, "customer")
        plan = {"customerNo": cno, "productCode": "EZ-TERM", "sumInsured": 100000000,
                "coveragePeriod": 20, "paymentPeriod": 20, "paymentCycle": "monthly"}
        a = client.call("probe-setup", "POST", "/enrollments", token, plan, write=True)
        if a.status != 201:
            raise RuntimeError(f"probe setup: POST /enrollments answered {a.status}: {a.body[:300]!r}")
        ids.append(a.field("id"))
    client.conn.close()
    return ids


# ---- the summary


def pct(x, base):
    return f"{100.0 * x / base:.0f}%" if base else "n/a"


def windows(series, width):
    """The lowest average over `width` consecutive seconds, or None if too short."""
    if len(series) < width:
        return None
    return min(sum(series[i:i + width]) / width for i in range(len(series) - width + 1))


def summarize(cfg, stats, markers, probe_result, t_load, t_stop):
    rel = lambda t: t - stats.t0
    first_sec = stats.sec(t_load)
    last_sec = stats.sec(t_stop) - 1  # the last full second
    seconds = list(range(first_sec, last_sec + 1))
    col = lambda name: [stats.bins[s][name] for s in seconds]

    def bounds(start_name, end_name):
        s, e = markers.first(start_name), markers.first(end_name)
        if not s:
            return None
        return s[0], (e[0] if e else t_stop)

    p1 = bounds("phase1-start", "phase1-end")
    p2 = bounds("phase2-start", "phase2-end")
    base_end = p1[0] if p1 else (p2[0] if p2 else t_stop)
    periods = [("warm-up/baseline", t_load, base_end)]
    if p1:
        periods.append(("phase 1 rolling restart", p1[0], p1[1]))
        periods.append(("between phases", p1[1], p2[0] if p2 else t_stop))
    if p2:
        periods.append(("phase 2 crash (kill -9)", p2[0], p2[1]))
        periods.append(("after phase 2", p2[1], t_stop))

    def secs_in(a, b):
        return [s for s in seconds if s >= stats.sec(a) and s < max(stats.sec(b), stats.sec(a) + 1)]

    # Baseline: whole seconds before phase 1, skipping the ramp-up.
    base_secs = [s for s in secs_in(t_load, base_end) if s >= first_sec + cfg.baseline_skip]
    if not base_secs:
        base_secs = secs_in(t_load, base_end)
    base_j = statistics.median([stats.bins[s]["journeys"] for s in base_secs]) if base_secs else 0
    base_r = statistics.median([stats.bins[s]["sent"] for s in base_secs]) if base_secs else 0
    mean_j = statistics.mean([stats.bins[s]["journeys"] for s in base_secs]) if base_secs else 0
    mean_r = statistics.mean([stats.bins[s]["sent"] for s in base_secs]) if base_secs else 0
    # A median of 0 (journeys rarer than one a second) makes no base for a %: the mean then.
    ref_j, ref_r = (base_j or mean_j), (base_r or mean_r)

    out = []
    w = out.append
    total = lambda name: sum(stats.bins[s][name] for s in stats.bins)
    w("")
    w("=== rolling-restart summary ===")
    w(f"clients {cfg.clients}, long polls waitSeconds={cfg.wait_seconds}, "
      f"load ran {t_stop - t_load:.1f} s")
    w("")
    w("timeline (s since the load started):")
    for t, name, attrs in markers.items:
        extra = " ".join(f"{k}={v}" for k, v in attrs.items())
        w(f"  {rel(t):7.1f}  {name} {extra}".rstrip())
    w("")
    w(f"requests sent      {total('sent')}")
    w(f"requests failed    {total('failed')}   (5xx or connection error, as the client saw them, before its own retry)")
    w(f"retries            {total('retries')}")
    w(f"journeys completed {total('journeys')}")
    w(f"journeys abandoned {total('abandoned')}   (an unexpected answer, or {MAX_RETRIES} retries)")
    w(f"unexpected answers {total('unexpected')}")
    w(f"full long polls    {total('full_polls')}   (came back unchanged after the whole waitSeconds; by copy: "
      + (", ".join(f"{k} {n}" for k, n in sorted(Counter(s for _, _, s in stats.full_polls).items())) or "-") + ")")
    w("")
    w(f"baseline ({len(base_secs)} s before phase 1): median {base_j:g} journeys/s, {base_r:g} requests/s; "
      f"mean {mean_j:.2f} journeys/s, {mean_r:.1f} requests/s")
    if (ref_j, ref_r) != (base_j, base_r):
        w("  (a median of 0 is no base for a %: the dips below are against the mean where the median is 0)")
    w("")
    header = f"{'period':26} {'secs':>5} {'sent':>7} {'failed':>6} {'retries':>7} {'journeys':>8} {'odd':>5} {'full':>5} {'j/s':>6} {'req/s':>6}  {'min 1s j/s':>12} {'min 3s j/s':>12} {'min 1s req/s':>13} {'min 3s req/s':>13}"
    w(header)
    for name, a, b in periods:
        ss = secs_in(a, b)
        if not ss:
            continue
        sums = {k: sum(stats.bins[s][k] for s in ss) for k in ("sent", "failed", "retries", "journeys", "unexpected", "full_polls")}
        js = [stats.bins[s]["journeys"] for s in ss]
        rs = [stats.bins[s]["sent"] for s in ss]
        j1, j3, r1, r3 = windows(js, 1), windows(js, 3), windows(rs, 1), windows(rs, 3)
        f = lambda v, base: "-" if v is None else f"{v:.1f} ({pct(v, base)})"
        w(f"{name:26} {len(ss):>5} {sums['sent']:>7} {sums['failed']:>6} {sums['retries']:>7} "
          f"{sums['journeys']:>8} {sums['unexpected']:>5} {sums['full_polls']:>5} {sums['journeys'] / len(ss):>6.2f} {sums['sent'] / len(ss):>6.1f}  {f(j1, ref_j):>12} {f(j3, ref_j):>12} "
          f"{f(r1, ref_r):>13} {f(r3, ref_r):>13}")
    w("  (odd: unexpected answers; full: long polls that came back unchanged after their whole waitSeconds;")
    w("   dips are the lowest 1-second and 3-second averages within the period, as % of the baseline median)")

    def period_of(t):
        for name, a, b in periods:
            if a <= t < b:
                return name
        return "after stop" if t >= t_stop else "before load"

    if stats.failures:
        w("")
        w("failed requests by period, step, kind (status:type or conn:error), copy that answered:")
        c = Counter((period_of(t), step, kind, served) for t, step, kind, served, _ in stats.failures)
        for (per, step, kind, served), n in sorted(c.items(), key=lambda kv: (kv[0][0], -kv[1])):
            w(f"  {n:6}  {per:26} {step:15} {kind:32} {served}")
        w("  the first ones (s since the load started when seen; request; when it was sent):")
        for t, step, kind, served, what in stats.failures[:12]:
            w(f"    {rel(t):8.3f}  {kind:28} {served:6} {what}")
    if stats.unexpected:
        w("")
        w("unexpected answers by period, step, status, type, copy that answered:")
        c = Counter((period_of(t), step, status, kind, served) for t, step, status, kind, served in stats.unexpected)
        for (per, step, status, kind, served), n in sorted(c.items(), key=lambda kv: (kv[0][0], -kv[1])):
            w(f"  {n:6}  {per:26} {step:15} {status:>4} {kind:32} {served}")
    if stats.gave_up:
        w("")
        w(f"journeys given up after {MAX_RETRIES} retries: "
          + ", ".join(f"{k} x{n}" for k, n in Counter(s for _, s in stats.gave_up).items()))
    if probe_result is not None:
        w("")
        pr = probe_result
        rec = "never within the probe" if pr["recovered_after_s"] is None else f"{pr['recovered_after_s']:.2f} s"
        w(f"probe (from the kill, {pr['ids']} enrollments every {cfg.probe_interval * 1000:.0f} ms through the proxy):")
        w(f"  probes sent {pr['sent']}, failed {pr['failed']} ({pr['ids_that_failed']} of {pr['ids']} enrollments failed at least once)")
        if pr["first_failure_s"] is not None:
            w(f"  failures seen from {pr['first_failure_s']:.2f} s to {pr['last_failure_s']:.2f} s after the kill")
        w(f"  all {pr['ids']} answer 200 again: {rec} after the kill")
        for kind, n in pr["kinds"].items():
            w(f"    {n:6}  {kind}")
    if cfg.timeline:
        w("")
        w("per second (s since the load started): sent failed retries journeys unexpected full-polls  [markers]")
        by_sec = defaultdict(list)
        for t, name, attrs in markers.items:
            by_sec[stats.sec(t)].append(name + ("" if "copy" not in attrs else f"({attrs['copy']})"))
        for s in seconds:
            b = stats.bins[s]
            mark = " ".join(by_sec.get(s, []))
            w(f"  {s - first_sec:4} {b['sent']:5} {b['failed']:4} {b['retries']:4} {b['journeys']:4} {b['unexpected']:4} {b['full_polls']:4}  {mark}".rstrip())
    result = {
        "requests_sent": total("sent"), "requests_failed": total("failed"), "retries": total("retries"),
        "journeys": total("journeys"), "abandoned": total("abandoned"), "unexpected": total("unexpected"),
        "baseline_journeys_per_s": base_j, "baseline_requests_per_s": base_r, "probe": probe_result,
        "baseline_mean_journeys_per_s": mean_j, "baseline_mean_requests_per_s": mean_r,
        "full_polls": total("full_polls"),
        "markers": [(round(rel(t), 3), name, attrs) for t, name, attrs in markers.items],
        "failures": [(round(rel(t), 3), step, kind, served, what) for t, step, kind, served, what in stats.failures],
        "unexpected_answers": [(round(rel(t), 3), step, status, kind, served) for t, step, status, kind, served in stats.unexpected],
    }
    return "\n".join(out), result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="http://127.0.0.1:PORT of the proxy")
    ap.add_argument("--markers", required=True, help="the markers file (see the module doc)")
    ap.add_argument("--clients", type=int, default=int(os.environ.get("CLIENTS", "16")))
    ap.add_argument("--wait-seconds", type=int, default=int(os.environ.get("WAIT_SECONDS", "10")),
                    help="waitSeconds of the long polls (at most 30)")
    ap.add_argument("--step-timeout", type=float, default=float(os.environ.get("STEP_TIMEOUT", "60")),
                    help="a long poll that has not seen the next status after this is 'stuck'")
    ap.add_argument("--probe-ids", type=int, default=int(os.environ.get("PROBE_IDS", "32")))
    ap.add_argument("--probe-interval", type=float, default=float(os.environ.get("PROBE_INTERVAL_MS", "100")) / 1000)
    ap.add_argument("--baseline-skip", type=int, default=2, help="ramp-up seconds left out of the baseline")
    ap.add_argument("--max-seconds", type=float, default=float(os.environ.get("MAX_SECONDS", "900")),
                    help="stop by itself after this long even without a stop marker")
    ap.add_argument("--no-timeline", dest="timeline", action="store_false")
    ap.add_argument("--json", help="also write the figures here as JSON")
    cfg = ap.parse_args()
    cfg.secret = os.environ.get("EZENROLL_JWT_SECRET", "")
    if len(cfg.secret) < 16:
        print("journeys.py: EZENROLL_JWT_SECRET (at least 16 bytes) is required", file=sys.stderr)
        return 2
    url = urllib.parse.urlsplit(cfg.base)
    cfg.host, cfg.port = url.hostname, url.port or 80
    if cfg.host not in ("127.0.0.1", "localhost", "::1"):
        print("journeys.py: load tests target the loopback only", file=sys.stderr)
        return 2
    cfg.admin_token = mint(cfg.secret, "rolling-restart", "admin")
    cfg.wait_seconds = max(1, min(cfg.wait_seconds, 30))

    markers = Markers(cfg.markers)
    try:
        ids = setup_probe_ids(cfg, cfg.probe_ids)
    except (RuntimeError, Abandoned, Stopped) as e:
        print(f"journeys.py: cannot make the probe's enrollments: {e}", file=sys.stderr)
        return 2
    print(f"journeys.py: {len(ids)} probe enrollments made; starting {cfg.clients} clients", file=sys.stderr)

    stop = threading.Event()
    t_load = time.time()
    stats = Stats(t_load)
    clients = [Client(n + 1, cfg, stats, stop) for n in range(cfg.clients)]
    for c in clients:
        c.start()
    append_marker(cfg.markers, "load-started", clients=cfg.clients)
    probe = None
    probe_result = None
    deadline = t_load + cfg.max_seconds
    stopped_by = "max-seconds"
    while time.time() < deadline:
        done = False
        for t, name, attrs in markers.poll():
            if name == "kill" and probe is None and ids:
                probe = Probe(cfg, ids, t)
                probe.start()
            elif name == "phase2-end" and probe is not None and probe_result is None:
                probe_result = probe.finish()
            elif name == "stop":
                done = True
                stopped_by = "stop marker"
        if done:
            break
        time.sleep(0.1)
    t_stop = time.time()
    stop.set()
    if probe is not None and probe_result is None:
        probe_result = probe.finish()
    # Clients in a long poll would hold the summary up to waitSeconds: their threads are
    # daemons, and nothing after t_stop is counted anyway.
    join_until = time.time() + 2
    for c in clients:
        c.join(timeout=max(0.0, join_until - time.time()))
    print(f"journeys.py: stopped ({stopped_by})", file=sys.stderr)

    text, result = summarize(cfg, stats, markers, probe_result, t_load, t_stop)
    print(text, flush=True)
    if cfg.json:
        with open(cfg.json, "w") as f:
            json.dump(result, f, indent=2)
    failed = result["requests_failed"] + (probe_result["failed"] if probe_result else 0)
    if result["journeys"] == 0:
        print("\nFAIL: no journey completed", flush=True)
        return 2
    if failed:
        if os.environ.get("ALLOW_FAILURES") == "1":
            print(f"\n{failed} requests failed (load and probe); ALLOW_FAILURES=1, so not an error", flush=True)
            return 0
        print(f"\nFAIL: {failed} requests failed (load and probe); ALLOW_FAILURES=1 accepts that", flush=True)
        return 1
    print("\nOK: no request failed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
