#!/usr/bin/env python3
"""The driver of scripts/scale.sh (python3 standard library only): what a copy of
`ezenroll serve` costs when several share one Redis. scale.sh starts Redis and the copies;
this measures them and prints the summary. Three subcommands:

  journeys   full enrollments (plan, document, long poll until issued, proposal; a new
             customer every 10 plans) from CLIENTS concurrent clients, each request sent
             to a copy picked at random (a balancer without affinity), so that with N
             copies about (N-1)/N of the requests about an enrollment land on a copy that
             does not own it and are forwarded.
             After a warm-up it measures a window: journeys and requests per second,
             failures (any answer that is not 2xx, and any request that could not be
             sent or read), the CPU (utime + stime from /proc/PID/stat) of every copy, of
             Redis and of this driver, and the copies' forwarding counters from /metrics.
             One JSON line on stdout.
  forwarding with two copies: K enrollments, each one's owner found from the copies'
             forwarding counters, then sequential GET /enrollments/{id} and
             PUT /enrollments/{id}/plan through the owner (local) and through the other
             copy (forwarded), in alternating rounds, on keep-alive connections
             (http.client). One JSON line on stdout.
  report     reads the JSON lines of a run and prints the summary tables.

Every request carries the admin token in EZENROLL_TOKEN.
"""

import argparse
import asyncio
import http.client
import json
import os
import random
import statistics
import sys
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")
PLAN = ('{{"customerNo":"{customer}","productCode":"EZ-TERM","sumInsured":100000000,'
        '"coveragePeriod":20,"paymentPeriod":20,"paymentCycle":"monthly"}}')
CUSTOMER = ('{{"name":"부하{n}","birthDate":"1986-05-01","gender":"male",'
            '"mobilePhone":"010-1234-5678"}}')
PROPOSAL = '{"paymentMethod":"card"}'
# A customer is reused for this many plans (the product's cumulative limit per customer
# allows more; the Rust load generator, examples/enrollment_load.rs, does the same).
PLANS_PER_CUSTOMER = 10


def cpu_seconds(pid):
    """utime + stime of a live process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        # The command name may hold spaces: the fields after its closing parenthesis.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def own_cpu_seconds():
    t = os.times()
    return t.user + t.system


def metrics(base):
    """The unlabelled samples of a copy's /metrics, and the labelled ones summed by name."""
    with urllib.request.urlopen(base + "/metrics", timeout=10) as answer:
        text = answer.read().decode()
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        name = name.split("{", 1)[0]
        out[name] = out.get(name, 0.0) + float(value)
    return out


CLUSTER_COUNTERS = ("ezenroll_forwarded_requests_total", "ezenroll_forward_retries_total",
                    "ezenroll_unowned_requests_total")


def counters(bases):
    per_copy = [metrics(b) for b in bases]
    return {name: [m.get(name, 0.0) for m in per_copy]
            for name in CLUSTER_COUNTERS + ("ezenroll_partitions_owned", "ezenroll_cluster_members",
                                            "ezenroll_consumer_lag")}


# ---------------------------------------------------------------- journeys (asyncio)

class Failure(Exception):
    pass


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time; reopened after a
    failure. Cheaper per request than asyncio streams, which matters: the driver shares
    the machine's two cores with what it measures."""

    def __init__(self, host, port, auth):
        self.host, self.port, self.auth = host, port, auth
        self.transport = None
        self.buf = bytearray()
        self.waiter = None

    async def call(self, method, path, body=b""):
        if self.transport is None or self.transport.is_closing():
            loop = asyncio.get_running_loop()
            try:
                await loop.create_connection(lambda: self, self.host, self.port)
            except OSError as e:
                raise Failure(f"connect: {e}") from None
        self.buf.clear()
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(
            b"%s %s HTTP/1.1\r\nHost: scale\r\n%sContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (method, path, self.auth, len(body), body))
        return await self.waiter

    # asyncio.Protocol
    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            import socket
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data):
        self.buf += data
        if self.waiter is None or self.waiter.done():
            return
        answer = self.parse()
        if answer is not None:
            self.waiter.set_result(answer)

    def connection_lost(self, exc):
        self.transport = None
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(Failure(f"connection lost: {exc}"))

    def parse(self):
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(buf[:end]).lower()
        status = int(head[9:12])
        at = head.find(b"\r\ncontent-length:")
        if at >= 0:
            stop = head.find(b"\r\n", at + 2)
            length = int(head[at + 17:stop if stop >= 0 else len(head)])
            if len(buf) < end + 4 + length:
                return None
            return status, bytes(buf[end + 4:end + 4 + length])
        if b"\r\ntransfer-encoding: chunked" in head:
            body, at = bytearray(), end + 4
            while True:
                line_end = buf.find(b"\r\n", at)
                if line_end < 0:
                    return None
                size = int(bytes(buf[at:line_end]).split(b";")[0], 16)
                if len(buf) < line_end + 2 + size + 2:
                    return None
                body += buf[line_end + 2:line_end + 2 + size]
                at = line_end + 2 + size + 2
                if size == 0:
                    return status, bytes(body)
        return status, b""


def field(body, name):
    """The text after `"name":"` up to the next quote, or None."""
    key = b'"%s":"' % name
    at = body.find(key)
    if at < 0:
        return None
    at += len(key)
    return body[at:body.find(b'"', at)]


class Tally:
    def __init__(self):
        self.journeys = 0
        self.requests = 0
        self.about_enrollment = 0   # requests addressed to one existing enrollment
        self.failures = 0
        self.statuses = {}          # non-2xx status (or "io") -> count
        self.kinds = {}             # (step, problem type) -> count
        self.latency_sum = 0.0
        self.step_latency = {}      # step -> [requests, seconds]


async def client(n, addresses, auth, state):
    pick = random.Random(n).randrange
    conns = [Connection(host, port, auth) for host, port in addresses]
    customer = enrollment = None
    plans = 0
    step = "customer"
    while not state["stop"]:
        # Each request to a copy picked at random, as by a balancer without affinity: the
        # copy a request lands on is unrelated to the one that owns its enrollment, so
        # (N-1)/N of them are forwarded. Strict turns would not do that: a journey has a
        # fixed number of steps, so a turn per client sends its steps to the same copies
        # every time (2 of 3 forwarded with 2 copies), and one turn for all clients falls
        # into step with the clients' regular order on the event loop.
        conn = conns[pick(len(conns))]
        if step == "customer":
            request = (b"POST", b"/customers", CUSTOMER.format(n=n).encode())
        elif step == "plan":
            request = (b"POST", b"/enrollments", PLAN.format(customer=customer).encode())
        elif step == "document":
            request = (b"POST", b"/enrollments/%s/document" % enrollment, b"")
        elif step == "poll":
            request = (b"GET", b"/enrollments/%s?waitWhileStatus=DocumentRequested&waitSeconds=10"
                       % enrollment, b"")
        else:
            request = (b"POST", b"/enrollments/%s/proposal" % enrollment, PROPOSAL.encode())
        started = time.perf_counter()
        try:
            status, body = await conn.call(*request)
        except (Failure, ValueError) as e:
            status, body = None, str(e).encode()
        t = state["tally"]  # the warm-up's tally, then the window's, then a throwaway
        t.requests += 1
        took = time.perf_counter() - started
        t.latency_sum += took
        per_step = t.step_latency.setdefault(step, [0, 0.0])
        per_step[0] += 1
        per_step[1] += took
        if step in ("document", "poll", "proposal"):
            t.about_enrollment += 1
        if status is None or not 200 <= status < 300:
            t.failures += 1
            key = str(status) if status is not None else "io"
            t.statuses[key] = t.statuses.get(key, 0) + 1
            kind = (field(body, b"type") or body[:80]).decode(errors="replace").rsplit("/", 1)[-1]
            t.kinds[f"{step} {kind}"] = t.kinds.get(f"{step} {kind}", 0) + 1
            if status is None:
                await asyncio.sleep(0.01)  # a copy that is down is not spun against
            # Start the journey again from the plan (or the customer).
            step = "plan" if customer is not None else "customer"
            continue
        if step == "customer":
            customer = field(body, b"customerNo").decode()
            step = "plan"
        elif step == "plan":
            enrollment = field(body, b"id")
            step = "document"
        elif step == "document":
            step = "poll"
        elif step == "poll":
            if b'"status":"DocumentIssued"' in body:
                step = "proposal"
        else:
            if b'"status":"Contracted"' in body:
                t.journeys += 1
            plans += 1
            step = "customer" if plans % PLANS_PER_CUSTOMER == 0 else "plan"


def snapshot(pids, redis_pid, bases):
    return {
        "time": time.monotonic(),
        "copies_cpu": [cpu_seconds(p) for p in pids],
        "redis_cpu": cpu_seconds(redis_pid),
        "driver_cpu": own_cpu_seconds(),
        "counters": counters(bases),
    }


async def journeys_main(args):
    bases = args.bases.split(",")
    pids = [int(p) for p in args.pids.split(",")]
    addresses = []
    for base in bases:
        host, port = base.removeprefix("http://").split(":")
        addresses.append((host, int(port)))
    auth = b"Authorization: Bearer %s\r\n" % os.environ["EZENROLL_TOKEN"].encode()
    # The copies idle (heartbeats, leases, consumers and timers polling) before any load.
    loop = asyncio.get_running_loop()
    idle_before = await loop.run_in_executor(None, snapshot, pids, args.redis_pid, bases)
    await asyncio.sleep(args.idle)
    idle_after = await loop.run_in_executor(None, snapshot, pids, args.redis_pid, bases)
    idle_seconds = idle_after["time"] - idle_before["time"]
    warmup, window = Tally(), Tally()
    state = {"stop": False, "tally": warmup}
    tasks = [asyncio.create_task(client(n, addresses, auth, state))
             for n in range(args.clients)]
    await asyncio.sleep(args.warmup)
    # /metrics and /proc are read off the event loop thread so the clients keep going.
    before = await loop.run_in_executor(None, snapshot, pids, args.redis_pid, bases)
    state["tally"] = window
    await asyncio.sleep(args.duration)
    state["tally"] = Tally()
    after = await loop.run_in_executor(None, snapshot, pids, args.redis_pid, bases)
    state["stop"] = True
    done, pending = await asyncio.wait(tasks, timeout=15)
    for task in pending:
        task.cancel()
    for task in done:
        if task.exception() is not None:
            raise task.exception()
    # Events of the window's last journeys are still being handled at its end.
    await asyncio.sleep(0.2)
    lag = counters(bases)["ezenroll_consumer_lag"]
    seconds = after["time"] - before["time"]
    delta = {name: [b - a for a, b in zip(before["counters"][name], after["counters"][name])]
             for name in CLUSTER_COUNTERS}
    return {
        "kind": "journeys",
        "copies": len(bases),
        "series": args.series,
        "clients": args.clients,
        "seconds": seconds,
        "journeys": window.journeys,
        "requests": window.requests,
        "about_enrollment": window.about_enrollment,
        "failures": window.failures,
        "warmup_failures": warmup.failures,
        "statuses": window.statuses,
        "kinds": window.kinds,
        "warmup_kinds": warmup.kinds,
        "mean_latency_ms": 1000 * window.latency_sum / max(window.requests, 1),
        "step_latency_ms": {step: round(1000 * took / n, 2) for step, (n, took) in window.step_latency.items()},
        "step_requests": {step: n for step, (n, _) in window.step_latency.items()},
        "idle_copies_cpu_per_s": [(b - a) / idle_seconds for a, b in
                                  zip(idle_before["copies_cpu"], idle_after["copies_cpu"])],
        "idle_redis_cpu_per_s": (idle_after["redis_cpu"] - idle_before["redis_cpu"]) / idle_seconds,
        "copies_cpu": [b - a for a, b in zip(before["copies_cpu"], after["copies_cpu"])],
        "redis_cpu": after["redis_cpu"] - before["redis_cpu"],
        "driver_cpu": after["driver_cpu"] - before["driver_cpu"],
        "forwarded": sum(delta["ezenroll_forwarded_requests_total"]),
        "forwarded_per_copy": delta["ezenroll_forwarded_requests_total"],
        "forward_retries": sum(delta["ezenroll_forward_retries_total"]),
        "unowned": sum(delta["ezenroll_unowned_requests_total"]),
        "partitions_owned": after["counters"]["ezenroll_partitions_owned"],
        "members": after["counters"]["ezenroll_cluster_members"],
        "consumer_lag": max(lag) if lag else 0,
    }


# ---------------------------------------------------------------- forwarding (http.client)

class Copy:
    def __init__(self, base, pid, token):
        host, port = base.removeprefix("http://").split(":")
        self.base, self.pid = base, pid
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(self, method, path, body=None):
        self.conn.request(method, path, body=body.encode() if body else None, headers=self.headers)
        answer = self.conn.getresponse()
        return answer.status, answer.read()

    def forwarded(self):
        return metrics(self.base)["ezenroll_forwarded_requests_total"]


def forwarding_main(args):
    token = os.environ["EZENROLL_TOKEN"]
    copies = [Copy(b, int(p), token) for b, p in zip(args.bases.split(","), args.pids.split(","))]
    assert len(copies) == 2, "forwarding needs exactly two copies"
    # K enrollments, made through each copy in turn, a customer for every 8.
    made = []  # (id, plan body)
    through = {}  # id -> the copy its plan was saved through
    refused = []  # answers other than 201 to a plan save (each retried)
    for i in range(args.enrollments):
        if i % 8 == 0:
            status, body = copies[0].call("POST", "/customers", CUSTOMER.format(n=i))
            if status != 201:
                sys.exit(f"POST /customers answered {status}: {body[:300]!r}")
            customer = json.loads(body)["customerNo"]
        plan = PLAN.format(customer=customer)
        for attempt in range(5):
            status, body = copies[i % 2].call("POST", "/enrollments", plan)
            if status == 201:
                break
            # Not part of the comparison, but reported with it.
            refused.append(f"{status} {(field(body, b'type') or body[:80]).decode(errors='replace')}")
        else:
            sys.exit("could not create an enrollment in 5 tries")
        made.append((json.loads(body)["id"], plan))
        through[made[-1][0]] = i % 2
    # The owner of each: a GET through copy 0 that copy 0 forwarded is copy 1's.
    owner = {}
    for enrollment, _ in made:
        before = copies[0].forwarded()
        status, body = copies[0].call("GET", f"/enrollments/{enrollment}")
        if status != 200:
            sys.exit(f"GET answered {status}: {body[:300]!r}")
        owner[enrollment] = 1 if copies[0].forwarded() > before else 0
    # Check the other way round: through copy 1, forwarded exactly when copy 0 owns it.
    for enrollment, _ in made:
        before = copies[1].forwarded()
        copies[1].call("GET", f"/enrollments/{enrollment}")
        if (copies[1].forwarded() > before) != (owner[enrollment] == 0):
            sys.exit(f"the copies disagree on the owner of {enrollment}")
    owned_by = [sum(1 for o in owner.values() if o == c) for c in (0, 1)]
    if 0 in owned_by:
        sys.exit(f"every enrollment is owned by one copy ({owned_by}); cannot compare")

    def way(local, op, count):
        """count requests, enrollments in turn, each through its owner (local) or the
        other copy; per-request latencies and the copies' CPU."""
        latencies = []
        cpu0 = [cpu_seconds(c.pid) for c in copies]
        fwd0 = [c.forwarded() for c in copies]
        started = time.perf_counter()
        for i in range(count):
            enrollment, plan = made[i % len(made)]
            through = copies[owner[enrollment] if local else 1 - owner[enrollment]]
            t0 = time.perf_counter_ns()
            if op == "read":
                status, body = through.call("GET", f"/enrollments/{enrollment}")
            else:
                status, body = through.call("PUT", f"/enrollments/{enrollment}/plan", plan)
            latencies.append(time.perf_counter_ns() - t0)
            if status != 200:
                sys.exit(f"{op} {'local' if local else 'forwarded'} answered {status}: {body[:300]!r}")
        elapsed = time.perf_counter() - started
        cpu = sum(cpu_seconds(c.pid) for c in copies) - sum(cpu0)
        forwarded = sum(c.forwarded() for c in copies) - sum(fwd0)
        return {"median_us": statistics.median(latencies) / 1000,
                "p99_us": sorted(latencies)[int(0.99 * (len(latencies) - 1))] / 1000,
                "rps": count / elapsed, "cpu_us": cpu / count * 1e6, "forwarded": forwarded}

    rounds = {op: {"local": [], "forwarded": []} for op in ("read", "write")}
    for op in ("read", "write"):
        way(True, op, min(100, args.requests))  # warm the connections and the actors
        way(False, op, min(100, args.requests))
        for r in range(args.rounds):
            order = (True, False) if r % 2 == 0 else (False, True)
            for local in order:
                result = way(local, op, args.requests)
                rounds[op]["local" if local else "forwarded"].append(result)
    # A copy makes a new enrollment in a partition it owns, or, when it cannot find one,
    # has another copy make it: those are owned elsewhere than where they were sent.
    made_elsewhere = sum(1 for e, _ in made if owner[e] != through[e])
    return {"kind": "forwarding", "enrollments": len(made), "owned_by": owned_by, "refused": refused,
            "made_elsewhere": made_elsewhere,
            "requests": args.requests, "rounds": rounds}


# ---------------------------------------------------------------- report

def med_range(values, fmt="{:.0f}"):
    values = list(values)
    if not values:
        return "-"
    return (fmt.format(statistics.median(values)) + " (" + fmt.format(min(values)) + "–"
            + fmt.format(max(values)) + ")")


def report_main(args):
    runs = [json.loads(line) for line in open(args.results) if line.strip()]
    journeys = [r for r in runs if r["kind"] == "journeys"]
    forwarding = [r for r in runs if r["kind"] == "forwarding"]
    failed = False
    if journeys:
        print("\n== Full journeys, N copies on one Redis: median (min–max) over "
              f"{len({r['series'] for r in journeys})} alternating series ==")
        header = ("N", "enrollments/s", "requests/s", "failures", "forwarded/s", "fwd % of enr. reqs",
                  "copies CPU µs/enr", "Redis CPU µs/enr", "driver CPU µs/enr", "copies+Redis CPU %",
                  "idle CPU % (copies)")
        rows = []
        for n in sorted({r["copies"] for r in journeys}):
            rs = [r for r in journeys if r["copies"] == n]
            per = lambda r, cpu: cpu / max(r["journeys"], 1) * 1e6
            rows.append((
                str(n),
                med_range(r["journeys"] / r["seconds"] for r in rs),
                med_range(r["requests"] / r["seconds"] for r in rs),
                " ".join(str(r["failures"]) for r in rs),
                med_range(r["forwarded"] / r["seconds"] for r in rs),
                med_range((100 * r["forwarded"] / max(r["about_enrollment"], 1) for r in rs), "{:.1f}"),
                med_range(per(r, sum(r["copies_cpu"])) for r in rs),
                med_range(per(r, r["redis_cpu"]) for r in rs),
                med_range(per(r, r["driver_cpu"]) for r in rs),
                med_range(100 * (sum(r["copies_cpu"]) + r["redis_cpu"]) / r["seconds"] for r in rs),
                med_range((100 * sum(r["idle_copies_cpu_per_s"]) for r in rs), "{:.1f}"),
            ))
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
        print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
        for row in rows:
            print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
        print("failures: one figure per series. forwarded: ezenroll_forwarded_requests_total, "
              "all copies (retries and forwarded plan saves included); fwd %: that ÷ requests "
              "about one enrollment (document, poll, proposal), for which (N−1)/N is expected. CPU: utime+stime from /proc over the window ÷ journeys; "
              "the driver is this script's python3. copies+Redis CPU %: of one core "
              f"(the machine has {os.cpu_count()}), in the window. idle CPU %: all copies "
              "together, before any load.")
        for r in journeys:
            if r["failures"] or r["warmup_failures"] or r["unowned"] or r["forward_retries"]:
                failed = failed or r["failures"] > 0
                plans = r["step_requests"].get("plan", 0)
                print(f"  series {r['series']} N={r['copies']}: {r['failures']} failures in the window "
                      f"{r['kinds']} ({100 * r['failures'] / max(plans, 1):.1f}% of {plans} plan saves), "
                      f"{r['warmup_failures']} in the warm-up {r['warmup_kinds']}; "
                      f"forward retries {r['forward_retries']:.0f}, unowned {r['unowned']:.0f}")
        lags = [r["consumer_lag"] for r in journeys]
        print(f"consumer lag 0.2 s after each window: max {max(lags):.0f}; "
              f"mean request latency (ms) by N: " + ", ".join(
                  f"{n}: {statistics.median(r['mean_latency_ms'] for r in journeys if r['copies'] == n):.2f}"
                  for n in sorted({r['copies'] for r in journeys})))
    for f in forwarding:
        print(f"\n== Forwarded against local, 2 copies, {f['enrollments']} enrollments "
              f"(owned {f['owned_by'][0]}/{f['owned_by'][1]}), {len(f['rounds']['read']['local'])} "
              f"alternating rounds of {f['requests']} sequential requests each way ==")
        header = ("request", "way", "median µs", "p99 µs", "req/s", "CPU µs/req (both copies)",
                  "forwarded/round")
        rows = []
        for op, name in (("read", "GET /enrollments/{id}"), ("write", "PUT /enrollments/{id}/plan")):
            for way in ("local", "forwarded"):
                rs = f["rounds"][op][way]
                rows.append((name, way, med_range((r["median_us"] for r in rs), "{:.0f}"),
                             med_range((r["p99_us"] for r in rs), "{:.0f}"),
                             med_range(r["rps"] for r in rs),
                             med_range((r["cpu_us"] for r in rs), "{:.0f}"),
                             med_range((r["forwarded"] for r in rs), "{:.0f}")))
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
        print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
        for row in rows:
            print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
        print(f"owners found from the forwarding counters; {f['made_elsewhere']} of "
              f"{f['enrollments']} are owned by the other copy than the one their plan was saved through")
        if f["refused"]:
            print(f"while making them, {len(f['refused'])} plan saves were refused (then retried): "
                  + ", ".join(sorted(set(f["refused"]))))
        for op, name in (("read", "GET"), ("write", "PUT plan")):
            loc, fwd = f["rounds"][op]["local"], f["rounds"][op]["forwarded"]
            ratio = [b["median_us"] / a["median_us"] for a, b in zip(loc, fwd)]
            extra = [b["median_us"] - a["median_us"] for a, b in zip(loc, fwd)]
            cpu = [b["cpu_us"] - a["cpu_us"] for a, b in zip(loc, fwd)]
            print(f"{name}: forwarded/local latency ×{statistics.median(ratio):.2f} "
                  f"(rounds {min(ratio):.2f}–{max(ratio):.2f}), +{statistics.median(extra):.0f} µs; "
                  f"+{statistics.median(cpu):.0f} µs of copies' CPU per request "
                  "(medians of per-round differences; latency includes python's own client time)")
    return 1 if failed else 0


def describe_main(args):
    r = json.loads(args.line)
    j = max(r["journeys"], 1)
    print(f"  series {r['series']} N={r['copies']}: {r['journeys'] / r['seconds']:.0f} enrollments/s, "
          f"{r['requests'] / r['seconds']:.0f} requests/s, {r['failures']} failures, "
          f"{r['forwarded']:.0f} forwarded ({100 * r['forwarded'] / max(r['about_enrollment'], 1):.1f}% "
          f"of {r['about_enrollment']} requests about an enrollment); CPU per enrollment: copies "
          f"{sum(r['copies_cpu']) / j * 1e6:.0f} µs, Redis {r['redis_cpu'] / j * 1e6:.0f} µs, "
          f"driver {r['driver_cpu'] / j * 1e6:.0f} µs; mean ms by step "
          + ", ".join(f"{k} {v}" for k, v in r["step_latency_ms"].items()), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    j = sub.add_parser("journeys")
    j.add_argument("--bases", required=True, help="http://host:port,... one per copy")
    j.add_argument("--pids", required=True, help="the copies' pids, in the same order")
    j.add_argument("--redis-pid", type=int, required=True)
    j.add_argument("--clients", type=int, default=128)
    j.add_argument("--idle", type=float, default=3, help="seconds of idle CPU measured first")
    j.add_argument("--warmup", type=float, default=5)
    j.add_argument("--duration", type=float, default=20)
    j.add_argument("--series", type=int, default=1)
    f = sub.add_parser("forwarding")
    f.add_argument("--bases", required=True)
    f.add_argument("--pids", required=True)
    f.add_argument("--enrollments", type=int, default=32)
    f.add_argument("--rounds", type=int, default=10)
    f.add_argument("--requests", type=int, default=500)
    d = sub.add_parser("describe", help="one line about one journeys result")
    d.add_argument("line")
    r = sub.add_parser("report")
    r.add_argument("results")
    args = p.parse_args()
    if args.command == "journeys":
        print(json.dumps(asyncio.run(journeys_main(args))))
    elif args.command == "forwarding":
        print(json.dumps(forwarding_main(args)))
    elif args.command == "describe":
        describe_main(args)
    else:
        sys.exit(report_main(args))


if __name__ == "__main__":
    main()
