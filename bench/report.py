#!/usr/bin/python3
"""bench/report.py RESULTS.jsonl - the readable table of bench/run.sh and
bench/compare/run.sh: one row per figure, with the issue's target and whether
it is met, and taskq's ratio to each peer that ran: Celery+Redis ("cel"),
beanstalkd ("bst"), and, when their lines are there, Celery+RabbitMQ with
publisher confirms ("amqp") and Gearman ("gm"). A ratio > 1 means taskq is
better (more tasks/s, fewer us). Standard library only (Debian's python3)."""
import json
import sys


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    return rows


def find(rows, bench, workload, **kw):
    for r in rows:
        if r.get("bench") == bench and r.get("workload") == workload and all(
            r.get(k) == v for k, v in kw.items()
        ):
            return r
    return None


def fmt(v, unit=""):
    if v is None:
        return "-"
    if isinstance(v, float):
        v = f"{v:,.1f}" if abs(v) < 1000 else f"{v:,.0f}"
    else:
        v = f"{v:,}"
    return v + unit


# The peers: (bench name in the JSON lines, column head, short name in the
# ratio column, shown even without lines). The last two came later; their
# columns appear only when they ran, so bench/run.sh's table stays as it was.
PEERS = (
    ("celery", "celery", "cel", True),
    ("beanstalkd", "beanstalkd", "bst", True),
    ("celery-amqp", "celery-amqp", "amqp", False),
    ("gearman", "gearman", "gm", False),
)


def main():
    rows = load(sys.argv[1])
    ran = {r.get("bench") for r in rows}
    peers = [p for p in PEERS if p[3] or p[0] in ran]
    dash = ("-",) * len(peers)
    table = []  # (what, taskq, *peers, ratio, target, met)

    def cmp_row(what, key, workload, tq, target, ok, higher_better):
        t = tq.get(key) if tq else None
        vals, ratios = [], []
        for bench, _, short, _ in peers:
            o = find(rows, bench, workload)
            o = o.get(key) if o else None
            vals.append(fmt(o))
            if t and o:
                ratios.append(f"{short} x{(t / o if higher_better else o / t):.2f}")
        met = "-" if t is None or ok is None else ("yes" if ok(t) else "NO")
        table.append((what, fmt(t), *vals, " ".join(ratios) or "-", target, met))

    for dur, target in (("full", 30000), ("normal", 40000)):
        tq = find(rows, "taskq", "w1", durability=dur)
        cmp_row(f"W1 tasks/s ({dur})", "rate", "w1", tq, f">= {target:,}",
                lambda v, t=target: v >= t, True)
    for dur, p50, p99 in (("normal", 250, 1000), ("full", 1000, None)):
        tq = find(rows, "taskq", "w2", durability=dur)
        cmp_row(f"W2 p50 us ({dur})", "p50_us", "w2", tq, f"<= {p50:,}",
                lambda v, t=p50: v <= t, False)
        cmp_row(f"W2 p99 us ({dur})", "p99_us", "w2", tq,
                f"<= {p99:,}" if p99 else "-", (lambda v, t=p99: v <= t) if p99 else None,
                False)
        cmp_row(f"W2 p99.9 us ({dur})", "p999_us", "w2", tq, "-", None, False)
    w3 = {r["slots"]: r for r in rows if r.get("workload") == "w3"}
    if 1 in w3 and 2 in w3:
        sp = w3[2]["rate"] / w3[1]["rate"]
        table.append(("W3 speedup -n 2 / -n 1", f"{sp:.2f}", *dash, "-", ">= 1.9",
                      "yes" if sp >= 1.9 else "NO"))
    for n, r in sorted(w3.items()):
        ov = r["overhead_us_per_task"]
        table.append((f"W3 overhead us/task (-n {n}, {r['direct_us_per_task']:.0f} us direct)",
                      fmt(ov), *dash, "-", "< 50", "yes" if ov < 50 else "NO"))
    sub = find(rows, "taskq", "w4_submit")
    bl = find(rows, "taskq", "w4_backlog")
    dr = find(rows, "taskq", "w4_drain")
    w1full = find(rows, "taskq", "w1", durability="full")
    if sub:
        table.append((f"W4 submit tasks/s ({sub['tasks']:,})", fmt(sub["rate"]), *dash, "-", "-", "-"))
    if bl:
        mib = bl["rss_kb"] / 1024
        table.append(("W4 broker RSS MiB, backlog", f"{mib:.1f}", *dash, "-", "< 128",
                      "yes" if mib < 128 else "NO"))
        table.append(("W4 database MiB", f"{bl['db_bytes'] / 1048576:.1f}", *dash, "-", "-", "-"))
        s = bl["restart_answer_ms"] / 1000
        table.append(("W4 restart s (to first answer)", f"{s:.2f}", *dash, "-", "< 2",
                      "yes" if s < 2 else "NO"))
    if dr:
        ok = w1full and dr["rate"] >= 0.9 * w1full["rate"]
        table.append((f"W4 drain tasks/s ({dr['drained']:,} in {dr['seconds']:.0f} s)",
                      fmt(dr["rate"]), *dash, "-", "~ W1 full",
                      "-" if not w1full else ("yes" if ok else "NO")))
    head = ("figure", "taskq", *(p[1] for p in peers), "taskq ratio", "target", "met")
    widths = [max(len(str(r[i])) for r in table + [head]) for i in range(len(head))]
    for r in [head] + table:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


if __name__ == "__main__":
    main()
