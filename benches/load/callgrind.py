#!/usr/bin/env python3
"""Instructions a request costs the service, under callgrind: repeatable where a timed run is not.

    python3 benches/load/callgrind.py SERVICE [SERVICE ...]

Each SERVICE is a build of `examples/service.rs` (`run.sh` leaves `service-off` and `service-on`
in `$CARGO_TARGET_DIR/load-bins`). For each, this starts a Sentry sink (it answers `200` and
counts the envelopes), runs the service under `valgrind --tool=callgrind` against the local
PostgreSQL, Redis and RabbitMQ, creates one item, reads it a few times to warm the cache, zeroes
the counters, then sends `CG_REQUESTS` cache hits (`GET /items/{id}`) one after another on one
keep-alive connection, `CG_PACE` seconds apart so that the senders keep up. It then dumps the
counters and prints, per build:

* instructions a request on the threads that serve it (everything but the transport's senders),
* instructions an envelope on the sender threads (`insights_runtime::transport::Shared::run`,
  divided by the envelopes the sink took),
* the functions whose own instructions (callees left out) differ most from the first build's,
  a request.

Settings (environment): `CG_REQUESTS` (default 500), `CG_RATE` (`SENTRY_TRACES_SAMPLE_RATE`,
default 1.0), `CG_PACE` (default 0.04: under valgrind two senders take about 25 envelopes a
second, and an envelope dropped for overflow would leave its sending out of the count),
`CG_TOP` (rows of the difference, default 25), `CG_OUT` (where the callgrind files go, default
a temporary directory).

Instruction counts leave out the kernel and the memory system: a `memset` of 128 KB counts as
131,072 instructions (valgrind counts each step of `rep stosb`), though it takes about a
microsecond. Read them as where the work is, and the timed load test as what it costs.
"""

import http.client
import http.server
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

REQUESTS = int(os.environ.get("CG_REQUESTS", "500"))
RATE = os.environ.get("CG_RATE", "1.0")
PACE = float(os.environ.get("CG_PACE", "0.04"))
TOP = int(os.environ.get("CG_TOP", "25"))
SENDER = "insights_runtime::transport::Shared::run"
# Where a request's instructions go: (what, the functions whose inclusive counts add up to it).
# The first two run on the serving threads, the rest on the senders.
PARTS = (
    ("serving: the Redis command's spans started, data written",
     ("insights_runtime::redis::CommandSpans::start",)),
    ("serving: the Redis command's spans finished",
     ("insights_runtime::redis::CommandSpans::finish",)),
    ("sending: serializing the envelope",
     ("sentry_types::protocol::envelope::Envelope::to_writer",)),
    ("sending: gzip",
     ("flate2::mem::Compress::reset", "flate2::mem::Compress::compress_vec",
      "flate2::crc::Crc::update")),
    ("sending: dropping the envelope",
     ("core::ptr::drop_in_place<sentry_types::protocol::envelope::Items>",)),
    ("sending: scrubbing", ("insights_runtime::scrub::Scrubber::scrub_envelope",)),
    ("sending: the HTTP request",
     ("ureq::request::RequestBuilder<ureq::request::WithBody>::send",)),
)
MEMSET = "memset"
# Frames that callgrind_annotate lists with a thread's whole cost as their own (the roots of
# each thread, and tokio's scheduler loop, which recursion folds into a cycle).
ROOTS = ("clone.S:clone", "start_thread", "thread_start", "__rust_begin_short_backtrace",
         "vtable.shim", "tokio::runtime::")


class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    envelopes = 0
    lock = threading.Lock()

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        with Sink.lock:
            Sink.envelopes += 1
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def run(binary, out, sink_port):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")}
    env.update(
        {
            "BIND_ADDR": "127.0.0.1:0",
            "SENTRY_DSN": f"http://insightsload@127.0.0.1:{sink_port}/1",
            "SENTRY_TRACES_SAMPLE_RATE": RATE,
            "SENTRY_ENVIRONMENT": "loadtest",
            "CACHE_KEY_PREFIX": f"insights-cg:{os.getpid()}:",
        }
    )
    command = [
        "valgrind",
        "--tool=callgrind",
        "--fair-sched=yes",
        f"--callgrind-out-file={out}",
        binary,
    ]
    service = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    addr = None
    for line in service.stdout:
        found = re.match(r"listening on http://(\S+)", line)
        if found:
            addr = found.group(1)
            break
    if addr is None:
        sys.exit(f"{binary} did not start (is the database up?)")
    threading.Thread(target=lambda: [None for _ in service.stdout], daemon=True).start()
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=300)
    conn.request("POST", "/items", body="callgrind item")
    answer = conn.getresponse().read().decode()
    item = re.search(r'"id":\s*(\d+)', answer).group(1)
    for _ in range(20):
        conn.request("GET", f"/items/{item}")
        conn.getresponse().read()
    time.sleep(3)
    subprocess.run(["callgrind_control", "-z", str(service.pid)], stdout=subprocess.DEVNULL)
    before = Sink.envelopes
    for _ in range(REQUESTS):
        time.sleep(PACE)
        conn.request("GET", f"/items/{item}")
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            sys.exit(f"GET /items/{item} answered {response.status}")
    time.sleep(3)
    envelopes = Sink.envelopes - before
    subprocess.run(["callgrind_control", "-d", str(service.pid)], stdout=subprocess.DEVNULL)
    time.sleep(1)
    service.send_signal(signal.SIGTERM)
    service.wait(timeout=120)
    return envelopes


def costs(path, inclusive):
    text = subprocess.run(
        [
            "callgrind_annotate",
            "--threshold=100",
            f"--inclusive={'yes' if inclusive else 'no'}",
            path,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    table = {}
    for line in text.splitlines():
        found = re.match(r"\s*([\d,]+) \([^)]*\)\s+(?:\* )?(.*)$", line)
        if not found or ":" not in found.group(2):
            continue
        name = re.sub(r"\s*\[[^\]]*\]$", "", found.group(2))
        if "PROGRAM TOTALS" in name or (not inclusive and any(r in name for r in ROOTS)):
            continue
        # "file:function"; the file is "???" where there is no debug information.
        name = name.split(":", 1)[1]
        table[name] = table.get(name, 0) + int(found.group(1).replace(",", ""))
    return table


def main():
    binaries = sys.argv[1:]
    if not binaries:
        sys.exit(__doc__)
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    out_dir = os.environ.get("CG_OUT") or tempfile.mkdtemp(prefix="insights-cg-")
    results = []
    for n, binary in enumerate(binaries):
        out = os.path.join(out_dir, f"{n}-{os.path.basename(binary)}.out")
        envelopes = run(binary, out, sink.server_address[1])
        dump = out + ".1"
        inclusive = costs(dump, True)
        total = max(inclusive.values())
        sender = inclusive.get(SENDER, 0)
        results.append((binary, envelopes, total, sender, costs(dump, False), inclusive))
    print(f"\n{REQUESTS} cache hits, rate {RATE}, callgrind files in {out_dir}\n")
    print("| build | envelopes | instructions a request, serving | an envelope, sending |")
    print("|---|---|---|---|")
    for binary, envelopes, total, sender, _, _ in results:
        per_envelope = sender / envelopes if envelopes else 0
        print(
            f"| {binary} | {envelopes} | {(total - sender) / REQUESTS:,.0f} "
            f"| {per_envelope:,.0f} |"
        )
    print("\nInclusive instructions a request:\n")
    print("| part | " + " | ".join(os.path.basename(r[0]) for r in results) + " |")
    print("|---|" + "---|" * len(results))
    lines = [(what, [sum(r[5].get(f, 0) for f in functions) for r in results])
             for what, functions in PARTS]
    lines.append(("of which `memset` (valgrind counts `rep stosb` byte by byte)",
                  [sum(c for name, c in r[4].items() if MEMSET in name) for r in results]))
    lines.append(("serving", [r[2] - r[3] for r in results]))
    lines.append(("sending", [r[3] for r in results]))
    lines.append(("all", [r[2] for r in results]))
    for what, counts in lines:
        print(f"| {what} | " + " | ".join(f"{c / REQUESTS:,.0f}" for c in counts) + " |")
    base = results[0][4]
    for binary, _, _, _, own, _ in results[1:]:
        print(f"\nOwn instructions a request, {binary} less {results[0][0]}:\n")
        names = sorted(set(base) | set(own), key=lambda k: -abs(own.get(k, 0) - base.get(k, 0)))
        for name in names[:TOP]:
            diff = (own.get(name, 0) - base.get(name, 0)) / REQUESTS
            print(f"{diff:+10,.0f}  {name[:140]}")


if __name__ == "__main__":
    main()
