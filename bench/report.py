#!/usr/bin/env python3
"""report.py RESULTS_DIR OUT_DIR — the verdicts and the report of `make bench`.

Reads the raw figures scripts/bench.sh left in RESULTS_DIR (files of
key=value words: run, <name>.wrk, readable-<rate>, pipeline, produce-<n>,
running, prefetch-<kb>, linger-<ms>, and readable-<rate>.ms with one "ms
seconds-into-the-run" line a followed record) and the targets of
bench/targets.tsv, prints the tables, writes OUT_DIR/REPORT.md and its charts
(gnuplot), and exits 1 when a target is missed or a gate was not measured in a
full run (BENCH_SMOKE=1: no thresholds, exit 0).

A full run also appends its figures to OUT_DIR/history.jsonl; the report
shows, next to each figure of this run, its spread over every run recorded for
the same commit, misses counted."""
import glob
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = ("ratio>=", "ratio<=", "<")


def words(path):
    """The key=value words of a results file, as a dict (empty if absent).
    The file "run" has one key=value a line, and values may hold spaces."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return {}
    items = text.splitlines() if os.path.basename(path) == "run" else text.split()
    return dict(w.split("=", 1) for w in items if "=" in w)


class Figures:
    def __init__(self, results):
        self.results = results
        self.files = {}

    def get(self, ref):
        """ref is FILE:KEY or FILE:KEY/N; None when not measured."""
        name, key = ref.split(":", 1)
        key, _, div = key.partition("/")
        if name not in self.files:
            self.files[name] = words(os.path.join(self.results, name))
        v = self.files[name].get(key)
        try:
            return None if v in (None, "") else float(v) / (float(div) if div else 1.0)
        except ValueError:
            return None

    def text(self, ref, default="?"):
        v = self.get(ref)
        return default if v is None else fmt(v)


def load_targets(path):
    targets = []
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            gate, figure, ceiling, test, limit, unit, what = line.rstrip("\n").split("\t")
            if test not in TESTS:
                sys.exit(f"report.py: {path}: gate {gate}: unknown test {test!r}")
            targets.append(dict(gate=gate, figure=figure, ceiling=None if ceiling == "-" else ceiling,
                                test=test, limit=float(limit), unit=unit, what=what))
    return targets


def fmt(v):
    """1,234 for counts and rates, 12.34 for small figures."""
    return f"{v:,.0f}" if float(v).is_integer() or abs(v) >= 100 else f"{v:.2f}"


def judged(t, figs):
    """(the quantity the gate judges, passed): the ratio for ratio tests,
    else the figure; (None, False) when not measured."""
    value = figs.get(t["figure"])
    ceiling = figs.get(t["ceiling"]) if t["ceiling"] else None
    if value is None or (t["ceiling"] and not ceiling):
        return None, False
    if t["test"] == "ratio>=":
        return value / ceiling, value / ceiling >= t["limit"]
    if t["test"] == "ratio<=":
        return value / ceiling, value / ceiling <= t["limit"]
    return value, value < t["limit"]


def show(t, q):
    """A judged quantity as the table shows it."""
    if q is None:
        return "-"
    if t["test"] == "ratio>=":
        return f"{100 * q:.0f} %"
    if t["test"] == "ratio<=":
        return f"{q:.2f}×"
    return f"{fmt(q)} {t['unit']}"


def judge(t, figs, smoke):
    """The table cells of one gate and its verdict."""
    value = figs.get(t["figure"])
    ceiling = figs.get(t["ceiling"]) if t["ceiling"] else None
    q, ok = judged(t, figs)
    if t["test"] == "ratio>=":
        target = f"≥ {100 * t['limit']:.0f} %"
    elif t["test"] == "ratio<=":
        target = f"≤ {t['limit']:g}×"
    else:
        target = f"< {fmt(t['limit'])} {t['unit']}"
    cells = [fmt(value) + " " + t["unit"] if value is not None else "not measured",
             "" if not t["ceiling"] else
             (fmt(ceiling) + " " + t["unit"] if ceiling is not None else "not measured"),
             show(t, q) if t["ceiling"] else ""]
    if q is None:
        verdict = "not measured" if smoke else "FAIL (not measured)"
    else:
        verdict = "-" if smoke else ("PASS" if ok else "FAIL")
    return cells, target, verdict


def history(out, run, targets, figs, smoke):
    """Appends this run to OUT/history.jsonl (a full run only) and returns
    the runs recorded for its commit, this one included."""
    path = os.path.join(out, "history.jsonl")
    runs = []
    try:
        with open(path) as f:
            runs = [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        pass
    if not smoke:
        entry = {"date": run.get("date"), "rev": run.get("rev"), "gates": {}}
        for t in targets:
            q, ok = judged(t, figs)
            entry["gates"][t["gate"]] = {"q": q, "ok": ok}
        entry["pipeline_rate"] = figs.get("pipeline:rate")
        entry["cluster_rps"] = figs.get(f"cluster-c{run.get('conns', '64')}.wrk:rps")
        entry["standby_rps"] = figs.get("standby.wrk:rps")
        runs.append(entry)
        with open(path, "a") as f:
            f.write(json.dumps(entry) + "\n")
    return [r for r in runs if r.get("rev") == run.get("rev")]


def spread(t, runs):
    """"min–max over n runs, k missed" of one gate over runs."""
    qs = [r["gates"][t["gate"]] for r in runs if t["gate"] in r.get("gates", {})]
    if not qs:
        return "-"
    vals = [g["q"] for g in qs if g["q"] is not None]
    missed = sum(1 for g in qs if not g["ok"])
    rng = (f"{show(t, min(vals))} – {show(t, max(vals))}" if len(vals) > 1 else
           show(t, vals[0]) if vals else "not measured")
    return f"{rng} ({len(qs)} run{'s' if len(qs) != 1 else ''}, {missed} missed)"


def ms(figs, ref):
    v = figs.get(ref)
    return f"{v / 1000:.2f} ms" if v is not None else "-"


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: report.py RESULTS_DIR OUT_DIR")
    results, out = sys.argv[1], sys.argv[2]
    smoke = os.environ.get("BENCH_SMOKE") == "1"
    figs = Figures(results)
    run = words(os.path.join(results, "run"))
    rates = run.get("rates", "").split(",") if run.get("rates") else []
    targets = load_targets(os.path.join(HERE, "targets.tsv"))
    gated = {t["figure"] for t in targets}
    runs = history(out, run, targets, figs, smoke)

    # Details that go with a gate's label.
    detail = {
        "command": f"{run.get('conns', '?')} conn., the mean of two rounds in turn with the ceiling: "
                   f"{figs.text('command-1.wrk:rps')} against {figs.text('noop-1.wrk:rps')}, then "
                   f"{figs.text('command.wrk:rps')} against {figs.text('noop.wrk:rps')}",
        "consumer": f"{run.get('messages', '?')} msgs, {run.get('batches', '?')} batches",
        "consumer-running": f"{figs.text('running:messages')} msgs after SIGSTOP, "
                            f"{figs.text('running:running_batches')} batches; written while it ran: "
                            f"{figs.text('burst:burst_rps')} rows/s, {figs.text('burst:burst_full_batches')} of "
                            f"{figs.text('burst:burst_batches')} batches full",
        "consumer-batches": f"{figs.text('running:running_full_batches')} of "
                            f"{figs.text('running:running_batches')} full",
        "query": f"pool {run.get('pool', '?')}",
        "query-p99": f"p50 {ms(figs, 'query.wrk:p50_us')}, p99.9 {ms(figs, 'query.wrk:p999_us')}; "
                     f"the service's own histogram: p99 ≤ {figs.text('query.server:server_p99_le_ms')} ms, "
                     f"{figs.text('query.server:server_over_100ms')} of {figs.text('query.server:server_count')} "
                     f"over 100 ms",
        "query-checkpoint": f"issued a third into the window after {run.get('messages', '?')} new rows, "
                            f"it took {figs.text('checkpoint:query_s')} s; p50 {ms(figs, 'query-ckpt.wrk:p50_us')}, "
                            f"max {ms(figs, 'query-ckpt.wrk:max_us')}; the service's own histogram: p99 ≤ "
                            f"{figs.text('query-ckpt.server:server_p99_le_ms')} ms; pgbench across its own, its log "
                            f"corrected for coordinated omission as wrk corrects its own: p99 "
                            f"{figs.text('pgbench-ckpt:p99_ms')} ms (as logged: "
                            f"{figs.text('pgbench-ckpt:raw_p99_ms')} ms), max {figs.text('pgbench-ckpt:max_ms')} ms",
        "rss-consumer": f"{figs.text('run:rss_backlog_mib_consumer-service')} MiB on the backlog",
    }
    for s in ("command-service", "consumer-service", "query-service"):
        short = s.split("-")[0]
        rest = f"at rest {figs.text('run:rss_rest_mib_' + s)} MiB"
        detail[f"rss-{short}"] = rest + ("; " + detail[f"rss-{short}"] if f"rss-{short}" in detail else "")
        detail[f"ready-{short}"] = (f"dependencies up; first start "
                                   f"{figs.text('run:first_ready_ms_' + s)} ms")

    def readable_detail(rate, name=None):
        r = name or f"readable-{rate}"
        split = (f"; accept → the consumer's transaction p99 {figs.text(r + '.split:persist_p99_ms')} ms, "
                 f"longest gap between batches {figs.text(r + '.split:gap_max_ms')} ms"
                 if figs.get(r + ".split:rows") is not None else "")
        return (f"p50 {figs.text(r + ':readable_p50_ms')}, max {figs.text(r + ':readable_max_ms')} ms; "
                f"{figs.text(r + ':readable')} checked, achieved {figs.text(r + ':rate')}/s{split}")

    n_runs = len(runs)
    table = ["| Figure | Measured | Ceiling | Ratio | Target | | Over the runs of this commit |",
             "|---|---:|---:|---:|---:|---|---|"]
    failed = False
    for t in targets:
        cells, target, verdict = judge(t, figs, smoke)
        failed |= verdict.startswith("FAIL")
        extra = detail.get(t["gate"])
        if t["gate"].startswith("readable-"):
            extra = readable_detail(t["gate"].split("-", 1)[1])
        label = t["what"] + (f" ({extra})" if extra else "")
        table.append(f"| {label} | {cells[0]} | {cells[1]} | {cells[2]} | {target} | {verdict} | "
                     f"{spread(t, runs) if not smoke else '-'} |")
    # Rates measured without a gate of their own: shown, not judged.
    for rate in rates:
        if f"readable-{rate}:readable_p99_ms" not in gated:
            table.append(f"| accept→readable p99 at {rate}/s ({readable_detail(rate)}) | "
                         f"{figs.text(f'readable-{rate}:readable_p99_ms')} ms | | | | - | |")

    # The command path at every concurrency, against its two ceilings.
    lat = ["| Closed loop | req/s | p50 | p99 | p99.9 | max |", "|---|---:|---:|---:|---:|---:|"]
    rows = [("do-nothing HTTP server, 64 conn.", "noop.wrk")]
    for n in (1, 8):
        rows.append((f"produce → delivery report, {n} producer{'s' if n > 1 else ''} (ceiling)",
                     f"produce-{n}"))
    for c, name in ((1, "command-c1.wrk"), (8, "command-c8.wrk"), (64, "command.wrk"),
                    (256, "command-c256.wrk")):
        rows.append((f"command-service POST, {c} conn.", name))
    rows.append((f"query-service GET, 32 conn.", "query.wrk"))
    rows.append((f"pgbench, {run.get('query_conns', 32)} clients, the same SELECT, across a CHECKPOINT "
                 f"({figs.text('checkpoint:pgbench_s')} s; corrected as wrk corrects, as logged: p99 "
                 f"{figs.text('pgbench-ckpt:raw_p99_ms')} ms, p99.9 {figs.text('pgbench-ckpt:raw_p999_ms')} ms)",
                 "pgbench-ckpt"))
    rows.append((f"query-service GET, {run.get('query_conns', 32)} conn., across a CHECKPOINT ({figs.text('checkpoint:query_s')} s)",
                 "query-ckpt.wrk"))
    rows.append((f"query-service range pages of 100 following Link, 32 conn. (pgbench, the same "
                 f"keyset statement: {figs.text('range:pgbench_pages_s')}/s; ratio {figs.text('range:ratio')})",
                 "range.wrk"))
    for label, name in rows:
        if name.startswith(("produce-", "pgbench-")):  # *_ms, and msgs_s (bench/produce-latency) or tps
            rate = name + (":msgs_s" if name.startswith("produce-") else ":tps")
            if figs.get(rate) is None:
                continue
            lat.append(f"| {label} | {figs.text(rate)} | " +
                       " | ".join(f"{figs.text(f'{name}:{k}')} ms" for k in ("p50_ms", "p99_ms", "p999_ms", "max_ms")) +
                       " |")
            continue
        if figs.get(f"{name}:rps") is None:
            continue
        lat.append(f"| {label} | {figs.text(name + ':rps')} | " +
                   " | ".join(ms(figs, f"{name}:{k}") for k in ("p50_us", "p99_us", "p999_us", "max_us")) +
                   " |")
    for rate in rates:
        r = f"readable-{rate}"
        lat.append(f"| command POST at {rate}/s (bench/attack, open loop) | {figs.text(r + ':rate')} | "
                   f"{figs.text(r + ':post_p50_ms')} ms | {figs.text(r + ':post_p99_ms')} ms | | "
                   f"{figs.text(r + ':post_max_ms')} ms |")

    # What the producer's linger buys and costs (step 2c), in the order of
    # BENCH_LINGERS' values.
    linger = []
    points_l = sorted((figs.get(f"{name}:linger"), name)
                      for name in (os.path.basename(f) for f in glob.glob(os.path.join(results, "linger-*")))
                      if re.fullmatch(r"linger-[0-9]+(\.[0-9]+)?", name) and figs.get(f"{name}:linger") is not None)
    if points_l:
        rate_l = figs.text(points_l[0][1] + ":rate")
        linger = [f"The producer's batching (step 2c): POSTs at {rate_l}/s (bench/attack, open loop, "
                  "the consumer stopped), command-service started with each `linger.ms` in turn "
                  "(`KAFKA_PROPERTIES`; the default is 0). A closed-loop client waits the linger out "
                  "on every request (README, Performance).",
                  "",
                  "| linger.ms | POST p50 | p99 | CPU a POST: command-service | the broker | together |",
                  "|---:|---:|---:|---:|---:|---:|"]
        def us(v):
            return "-" if v is None else f"{v:,.1f} µs"
        for _, name in points_l:
            c, b = figs.get(name + ":command_us"), figs.get(name + ":broker_us")
            linger.append(f"| {figs.text(name + ':linger')} | {figs.text(name + ':p50_ms')} ms | "
                          f"{figs.text(name + ':p99_ms')} ms | {us(c)} | {us(b)} | "
                          f"{us(c + b if c is not None and b is not None else None)} |")

    # The pipeline's sustainable rate.
    pipe = []
    rate, cmd = figs.get("pipeline:rate"), figs.get("command-pair:command_rps")
    if rate is not None:
        p = words(os.path.join(results, "pipeline"))
        share = f"{100 * rate / cmd:.0f} %" if rate and cmd else "-"
        spread_rates = [r.get("pipeline_rate") for r in runs if r.get("pipeline_rate") is not None]
        over = (f"; over the {len(spread_rates)} runs of this commit {fmt(min(spread_rates))} – "
                f"{fmt(max(spread_rates))}/s" if len(spread_rates) > 1 else "")
        why = p.get("why", "").replace("_", " ")
        pipe.append(f"**The pipeline's sustainable rate: {fmt(rate)} POST/s** — {share} of "
                    f"command-service's closed-loop rate alone ({figs.text('command-pair:command_rps')} req/s){over}. "
                    f"Rates tried: {p.get('tried', '').replace(',', ', ')}" +
                    (f"; the first that failed, {p.get('failed_at')}/s: {why}." if p.get("failed_at", "0") != "0"
                     else "; none failed."))
        pipe += ["", "| POST rate | achieved | accept→readable p50 | p99 | max | POST p99 |",
                 "|---:|---:|---:|---:|---:|---:|"]
        for tried in p.get("tried", "").split(","):
            r = f"pipeline-{tried}"
            if figs.get(r + ":rate") is None:
                continue
            pipe.append(f"| {tried}/s | {figs.text(r + ':rate')}/s | {figs.text(r + ':readable_p50_ms')} ms | "
                        f"{figs.text(r + ':readable_p99_ms')} ms | {figs.text(r + ':readable_max_ms')} ms | "
                        f"{figs.text(r + ':post_p99_ms')} ms |")

    # Issue 12's live side (bench/steps/live.sh): reported, no target.
    live = []
    for rate in rates:
        r = f"live-{rate}"
        if figs.get(r + ":wait_n") is None:
            continue
        if not live:
            live = ["| Live side, at a POST rate | POST 200 → waiting GET's 200: p50 | p99 | "
                    "POST 200 → stream event: p50 | p99 | counted |", "|---|---:|---:|---:|---:|---|"]
        live.append(f"| {rate}/s | {figs.text(r + ':wait_p50_ms')} ms | {figs.text(r + ':wait_p99_ms')} ms | "
                    f"{figs.text(r + ':stream_p50_ms')} ms | {figs.text(r + ':stream_p99_ms')} ms | "
                    f"{figs.text(r + ':wait_n')} waits ({figs.text(r + ':wait_late')} GETs late, "
                    f"{figs.text(r + ':wait_unsent')} not sent by the load generator, "
                    f"{figs.text(r + ':wait_not_200')} not 200), {figs.text(r + ':stream_n')} events "
                    f"({figs.text(r + ':stream_missing')} missing, "
                    f"{figs.text(r + ':stream_duplicates')} twice; the follower resumed "
                    f"{figs.text(r + ':stream_reconnects')} times with Last-Event-ID) |")

    # Issue 13: the same load on 3 brokers with RF 3, and GETs from a
    # standby (bench/steps/cluster.sh): reported beside the single-node
    # figures of the same run, no target.
    cluster = []
    conns = run.get("conns", "64")
    pairs = [(f"POST, {c} conn.", f"command-c{c}.wrk" if c != conns else "command.wrk", f"cluster-c{c}.wrk")
             for c in ("1", "8", conns)]
    pairs.append((f"GET by id, 32 conn. (primary / standby)", "query.wrk", "standby.wrk"))
    if any(figs.get(f"{c}:rps") is not None for _, _, c in pairs):
        cluster = ["| One broker, one PostgreSQL → 3 brokers (RF 3, min.insync.replicas 2), a standby | "
                   "req/s | on the cluster | ratio | p50 | on the cluster | p99 | on the cluster |",
                   "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for label, one, three in pairs:
            a, b = figs.get(f"{one}:rps"), figs.get(f"{three}:rps")
            ratio = f"{b / a:.2f}" if a and b is not None else "-"
            cluster.append(f"| {label} | {figs.text(one + ':rps')} | {figs.text(three + ':rps')} | {ratio} | "
                           f"{ms(figs, one + ':p50_us')} | {ms(figs, three + ':p50_us')} | "
                           f"{ms(figs, one + ':p99_us')} | {ms(figs, three + ':p99_us')} |")

    # Issue 14: what tracing costs (bench/steps/tracing.sh); the ratios are
    # gates of targets.tsv, this line says what was exported and dropped.
    tracing = ""
    if figs.get("tracing:post_ratio") is not None:
        tracing = ("Tracing (step 10), spans exported / dropped over the runs with tracing on: " +
                   ", ".join(f"{s} {figs.text('tracing:exported_' + s)} / {figs.text('tracing:dropped_' + s)}"
                             for s in ("command-service", "consumer-service", "query-service")) +
                   " (a span is dropped when the bounded export queue is full: the backlog makes spans "
                   "faster than one exporter sends them).")

    # The consumer's memory against its drain rate, by prefetch size.
    curve = []
    points = sorted((figs.get(f"{os.path.basename(f)}:kb"), os.path.basename(f))
                    for f in glob.glob(os.path.join(results, "prefetch-*")))
    points = [(kb, name) for kb, name in points if kb is not None]
    if points:
        curve = ["| prefetch (CONSUMER_PREFETCH_KB) | rows/s draining a backlog | peak RSS |",
                 "|---:|---:|---:|"]
        for kb, name in points:
            curve.append(f"| {fmt(kb)} KiB | {figs.text(name + ':rps')} | {figs.text(name + ':rss_peak_mib')} MiB |")

    cpu = ["| CPU time (user + system, from /proc) | ms |", "|---|---:|"]
    for what, key in (("command-service, per 1,000 POSTs (64 conn.)", "cpu_ms_per_1000_post"),
                      ("consumer-service, per 1,000 rows (backlog)", "cpu_ms_per_1000_row"),
                      ("query-service, per 1,000 GETs (32 conn.)", "cpu_ms_per_1000_get")):
        cpu.append(f"| {what} | {run.get(key, '-')} |")

    # Where the two cores' time went during each measured run, in the order
    # they ran (scripts/bench.sh's machine_note): the host's steal and a
    # step's leftovers show here.
    machine = []
    notes = sorted((os.path.getmtime(f), os.path.basename(f)[:-len(".machine")])
                   for f in glob.glob(os.path.join(results, "*.machine")))
    notes = [name for _, name in notes if not name.startswith("warm-")]
    if notes:
        machine = ["| run | probe | steal | host pause: longest | over 10 ms | broker GC pauses: longest | how many (in all) | iowait | idle | CPU ms by program (the load generator: wrk, or bench/attack and bench/readable; vegeta and its encoder in live) | waited for a core, ms by program (all its threads) | PostgreSQL WAL (full-page images) |",
                   "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|"]
        for name in notes:
            w = words(os.path.join(results, name + ".machine"))
            top = ", ".join(f"{p.rsplit(':', 1)[0]} {fmt(float(p.rsplit(':', 1)[1]))}"
                            for p in w.get("top", "").split(",") if ":" in p)
            # Runs measured before the bench counted it: not listed.
            if "loadgen_ms" in w:
                top = f"load generator {fmt(float(w['loadgen_ms']))}" + (", " + top if top else "")
            # Without real-time priority the meter also waited for a
            # core behind our programs: not a pause of the host alone.
            rt = "" if w.get("pause_rt", "1") == "1" else " (not real-time)"
            # A run measured before the brokers logged their pauses: "?".
            gc = ("? | ?" if "gc_pauses" not in w else "- | 0" if w["gc_pauses"] == "0" else
                  f"{w.get('gc_pause_max_ms', '?')} ms | {w['gc_pauses']} ({w.get('gc_pause_ms', '?')} ms)")
            # Runs measured before the bench counted them: "?".
            waited = ", ".join(f"{p.rsplit(':', 1)[0]} {fmt(float(p.rsplit(':', 1)[1]))}"
                               for p in w.get("waited", "").split(",") if ":" in p) or "?"
            wal = (f"{w['wal_mb']} MB ({fmt(float(w['wal_fpi']))})"
                   if "wal_mb" in w and "wal_fpi" in w else "?")
            machine.append(f"| {name} | {w.get('probe_ms', '?')} ms | {w.get('steal_pct', '?')} % | "
                           f"{w.get('pause_max_ms', '?')} ms{rt} | {w.get('pauses_10ms', '?')} | {gc} | "
                           f"{w.get('iowait_pct', '?')} % | {w.get('idle_pct', '?')} % | {top} | "
                           f"{waited} | {wal} |")

    sizes = "; ".join(f"{s} {run.get('size_kib_' + s, '?')} KiB ({run.get('stripped_kib_' + s, '?')} KiB stripped)"
                      for s in ("command-service", "consumer-service", "query-service"))
    print("\n".join(table) + "\n\n" + "\n".join(lat) + "\n\n" + "\n".join(pipe) +
          ("\n\n" + "\n".join(live) if live else "") +
          ("\n\n" + "\n".join(cluster) if cluster else "") +
          ("\n\n" + "\n".join(curve) if curve else "") + ("\n\n" + tracing if tracing else "") +
          "\n\n" + "\n".join(cpu) + ("\n\n" + "\n".join(machine) if machine else "") +
          f"\n\nbinaries (with debug info): {sizes}")

    readable_limit = next((t["limit"] for t in targets if t["gate"].startswith("readable-")), None)
    charts(results, out, figs, rates, readable_limit, points)
    newline = "\n"
    with open(os.path.join(out, "REPORT.md"), "w") as f:
        f.write(f"""# Benchmark report

Written by `make bench` ({"smoke run: no thresholds" if smoke else "full run"}) on {run.get('date', '?')}, commit {run.get('rev', '?')}
({n_runs} run{'s' if n_runs != 1 else ''} of this commit recorded in history.jsonl: the last column).

Machine: {run.get('machine', '?')}; load generator, Kafka, PostgreSQL
and the services all on these cores, the load generators at {run.get('loadgen', 'normal priority')},
PostgreSQL {run.get('postgres_cgroup', 'as plain processes')} (bench/README.md). {run.get('versions', '')}
Each step ran {run.get('seconds', '?')} s; {run.get('messages', '?')} messages for the consumer.
Targets: [targets.tsv](targets.tsv).

""" + "\n".join(table) + """

![throughput against ceilings](throughput.png)

""" + "\n".join(lat) + ("\n\n" + "\n".join(linger) if linger else "") + "\n\n" + "\n".join(pipe) + """

![accept → readable](readable.png)

![accept → readable over time](readable-timeline.png)
""" + ("\n" + "\n".join(live) + "\n" if live else "") + ("""
What real durability costs (step 9): the same closed-loop POSTs against three
brokers with replication factor 3 (a 200 waits for two copies), and the same
GETs answered from a streaming standby:

""" + "\n".join(cluster) + "\n" if cluster else "") + ("\n" + tracing + "\n" if tracing else "") + (f"""
Consumer memory against drain rate, by prefetch size (a backlog drained by a
consumer started on it, each size in turn):

{newline.join(curve)}

![consumer memory against drain rate](prefetch.png)
""" if curve else "") + "\n" + "\n".join(cpu) + ("""

Where the two cores' time went during each measured run (from /proc/stat
and each program's /proc/PID/stat). Probe: how long one core took for a
fixed loop just before the run (awk, 2 million additions): a busy host or a
step's leftover work makes it longer. Steal: time the virtual machine's
host gave to others during the run. Host pause: how late a wake-up of a
thread at the top real-time priority came (bench/pause, every 2 ms): none
of our programs can hold it back, so a late one is time the whole virtual
machine stood still; the longest, and how many were over 10 ms. Broker GC
pauses: the Kafka brokers' garbage-collection pauses during the run (from
their GC logs), the longest, and how many and how long in all: every POST
waits for the broker, so a pause shows in POST and accept→readable latency.
A run with stalls but no host pause was short of CPU, not stopped. java-jit: the
broker's JIT compiler threads, a part of java's time. A run with a long
probe, much steal or long host pauses measured the host too.

""" + "\n".join(machine) if machine else "") + f"""

Binary sizes (with debug info): {sizes}

How each figure is taken: see bench/README.md.
""")
    if smoke:
        print("smoke run: every step ran; no thresholds")
        return 0
    print("some targets were missed (FAIL above)" if failed else "every target met")
    return 1 if failed else 0


def gnuplot(script):
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


def charts(results, out, figs, rates, readable_limit, points):
    with open(os.path.join(results, "throughput.dat"), "w") as f:
        for label, a, b in (("command-service\\nPOST", "command-pair:command_rps", "command-pair:noop_rps"),
                            ("consumer-service\\nrows", "run:consumer_rps", "run:insert_rps"),
                            ("query-service\\nGET", "query.wrk:rps", "run:pgbench_tps")):
            f.write(f'"{label}" {figs.get(a) or 0} {figs.get(b) or 0}\n')
    gnuplot(f"""set terminal pngcairo size 900,500 font "sans,10"
set output "{out}/throughput.png"
set title "Throughput against its ceiling (same machine, same run)"
set bmargin 5
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel "per second"
set grid ytics
set key top right
set yrange [0:*]
plot "{results}/throughput.dat" using 2:xtic(1) title "service" lc rgb "#3366cc", \\
     "" using 3 title "ceiling" lc rgb "#aaaaaa"
""")
    if points:
        with open(os.path.join(results, "prefetch.dat"), "w") as f:
            for kb, name in points:
                f.write(f"{kb} {figs.get(name + ':rps') or 0} {figs.get(name + ':rss_peak_mib') or 0}\n")
        gnuplot(f"""set terminal pngcairo size 900,400 font "sans,10"
set output "{out}/prefetch.png"
set title "consumer-service draining a backlog: rows/s and peak memory by prefetch size"
set xlabel "CONSUMER_PREFETCH_KB"
set logscale x 2
set ylabel "rows/s"
set y2label "peak RSS, MiB"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
set grid
set key top left
plot "{results}/prefetch.dat" using 1:2 with linespoints lw 2 pt 7 title "rows/s" axes x1y1, \\
     "" using 1:3 with linespoints lw 2 pt 5 title "peak RSS (MiB)" axes x1y2
""")
    cdfs, timelines = [], []
    for rate in rates:
        src = os.path.join(results, f"readable-{rate}.ms")
        try:
            with open(src) as f:
                ms_ = sorted(float(line.split()[0]) for line in f if line.strip())
        except FileNotFoundError:
            continue
        if not ms_:
            continue
        cdf = os.path.join(results, f"readable-{rate}.cdf")
        with open(cdf, "w") as f:
            f.writelines(f"{v} {100 * (i + 1) / len(ms_)}\n" for i, v in enumerate(ms_))
        cdfs.append(f'"{cdf}" using 1:2 with lines lw 2 title "{rate} req/s"')
        timelines.append(f'"{src}" using 2:1 with points pt 7 ps 0.3 title "{rate} req/s"')
    if not cdfs:
        return
    limit = readable_limit or 50
    gnuplot(f"""set terminal pngcairo size 900,500 font "sans,10"
set output "{out}/readable.png"
set title "Accept → readable: time from a POST's 200 to the first GET that finds the record"
set xlabel "milliseconds"
set ylabel "% of records readable"
set logscale x
set grid
set key bottom right
set yrange [0:100]
set arrow from {limit}, graph 0 to {limit}, graph 1 nohead dt 2 lc rgb "red"
set label "target p99" at {limit}, 5 right offset -0.5,0 tc rgb "red"
plot {", ".join(cdfs)}
""")
    gnuplot(f"""set terminal pngcairo size 900,400 font "sans,10"
set output "{out}/readable-timeline.png"
set title "Accept → readable over each run: a stall shows as a column"
set xlabel "seconds into the run"
set ylabel "milliseconds"
set logscale y
set grid
set key top right
set arrow from graph 0, first {limit} to graph 1, first {limit} nohead dt 2 lc rgb "red"
plot {", ".join(timelines)}
""")


if __name__ == "__main__":
    sys.exit(main())
