"""bench/compare/celery_bench.py - the Celery side of bench/compare: the W1
and W2 shapes of bench/taskq_bench.c, with either
  - Redis as broker and result backend (CELERY_BENCH_REDIS; "bench": "celery"),
  - or RabbitMQ as broker with publisher confirms (confirm_publish: every
    apply_async waits for the broker's ack; durable queue and persistent
    messages, Celery's defaults) and results over AMQP (the rpc:// backend:
    one reply queue per client, results not persisted) when CELERY_BENCH_AMQP
    is set ("bench": "celery-amqp").
Runs on Debian's python3 with python3-celery and python3-redis / python3-amqp.

  worker: CELERY_BENCH_REDIS=redis://127.0.0.1:P python3 -m celery \
            -A celery_bench worker -c 2 --pool prefork   (cwd = bench/compare)
          (or CELERY_BENCH_AMQP=amqp://guest:guest@127.0.0.1:P//)
  client: the same environment, python3 celery_bench.py ready|w1|w2 [-N n]

w1: N apply_async of a no-op task (echo of one integer), then every result
collected (ResultSet.join_native: the Redis backend's pub/sub path, or the
rpc backend's reply queue) and checked; rate from the first send to the last
result. w2: one apply_async + .get(), N times in a row; p50/p99/p99.9 in
microseconds. One JSON line on stdout, like taskq-bench, with a "label"
saying which broker and backend.
"""
import json
import os
import sys
import time

from celery import Celery
from celery.result import ResultSet

AMQP = os.environ.get("CELERY_BENCH_AMQP")
REDIS = os.environ.get("CELERY_BENCH_REDIS", "redis://127.0.0.1:6379")
if AMQP:
    BENCH = "celery-amqp"
    LABEL = "rabbitmq confirm_publish, durable queue, rpc:// results"
    app = Celery("celery_bench", broker=AMQP, backend="rpc://")
    app.conf.broker_transport_options = {"confirm_publish": True}
else:
    BENCH = "celery"
    LABEL = "redis broker+backend, in memory"
    app = Celery("celery_bench", broker=REDIS + "/0", backend=REDIS + "/1")
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="bench.echo")
def echo(x):
    return x


def pct(v, p):
    k = max(1, min(len(v), int(p / 100.0 * len(v) + 0.999999)))
    return v[k - 1]


def wait_ready(timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if app.control.ping(timeout=0.5):
            # one round trip through the worker: its pool is up
            echo.apply_async((0,)).get(timeout=30)
            return 0
    print("celery worker did not answer", file=sys.stderr)
    return 1


def w1(n):
    t0 = time.monotonic()
    results = [echo.apply_async((i,)) for i in range(n)]
    values = ResultSet(results).join_native(timeout=600)
    secs = time.monotonic() - t0
    bad = sum(1 for i, v in enumerate(values) if v != i)
    print(json.dumps({"bench": BENCH, "label": LABEL, "workload": "w1", "workers": 2,
                      "tasks": n, "seconds": round(secs, 3), "rate": round(n / secs, 1),
                      "bad": bad}))
    return 0 if bad == 0 else 1


def w2(n):
    lat = []
    bad = 0
    t0 = time.monotonic()
    for i in range(n):
        s = time.monotonic()
        v = echo.apply_async((i,)).get(timeout=30)
        lat.append((time.monotonic() - s) * 1e6)
        bad += v != i
    secs = time.monotonic() - t0
    lat.sort()
    print(json.dumps({"bench": BENCH, "label": LABEL, "workload": "w2", "workers": 2,
                      "tasks": n, "seconds": round(secs, 3), "mean_us": round(sum(lat) / n, 1),
                      "p50_us": round(pct(lat, 50), 1), "p99_us": round(pct(lat, 99), 1),
                      "p999_us": round(pct(lat, 99.9), 1), "max_us": round(lat[-1], 1),
                      "bad": bad}))
    return 0 if bad == 0 else 1


def main(argv):
    if len(argv) < 2 or argv[1] not in ("ready", "w1", "w2"):
        print("usage: celery_bench.py ready|w1|w2 [-N n]", file=sys.stderr)
        return 2
    n = int(argv[argv.index("-N") + 1]) if "-N" in argv else (5000 if argv[1] == "w1" else 2000)
    return {"ready": lambda _: wait_ready(), "w1": w1, "w2": w2}[argv[1]](n)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
