"""A Python service on the other side of a queue, with Sentry's own Python SDK.

`produce`: starts a trace (release py-peer@1.0, rate 1.0) and prints, as JSON, the
`sentry-trace` and `baggage` it would put in a message. `consume`: reads such headers on stdin,
continues the trace, and prints the headers it would send on. Envelopes are dropped: nothing
leaves the process (the DSN's host is in `.invalid`).
"""
import json, sys
import sentry_sdk
from sentry_sdk.transport import Transport

class Drop(Transport):
    def capture_envelope(self, envelope):
        pass

sentry_sdk.init(dsn="https://49d0f7386ad645858ae85020e393bef3@o17.ingest.example.invalid/42",
    release="py-peer@1.0", environment="production", traces_sample_rate=1.0, transport=Drop)
mode = sys.argv[1]
if mode == "produce":
    with sentry_sdk.start_transaction(op="task", name="orders create"):
        with sentry_sdk.start_span(op="queue.publish", name="orders"):
            print(json.dumps({"sentry-trace": sentry_sdk.get_traceparent(), "baggage": sentry_sdk.get_baggage()}))
else:
    headers = json.loads(sys.stdin.read())
    tx = sentry_sdk.continue_trace(headers, op="queue.task", name="orders")
    with sentry_sdk.start_transaction(tx):
        print(json.dumps({"sentry-trace": sentry_sdk.get_traceparent(), "baggage": sentry_sdk.get_baggage()}))
