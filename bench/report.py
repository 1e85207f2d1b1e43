#!/usr/bin/env python3
"""report.py RESULTS_DIR OUT_DIR — the verdicts and the report of `make bench`.

Reads the raw figures scripts/bench.sh left in RESULTS_DIR (files of
key=value words: run, <name>.wrk, readable-<rate>, and readable-<rate>.ms with
one "ms seconds-into-the-run" line a followed record) and the targets of
bench/targets.tsv, prints the tables, writes OUT_DIR/REPORT.md and its charts
(gnuplot), and exits 1 when a target is missed or a gate was not measured in a
full run (BENCH_SMOKE=1: no thresholds, exit 0)."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


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
        """ref is FILE:KEY; None when not measured."""
        name, key = ref.split(":", 1)
        if name not in self.files:
            self.files[name] = words(os.path.join(self.results, name))
        v = self.files[name].get(key)
        return None if v in (None, "") else float(v)

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
            if test not in ("ratio>=", "<"):
                sys.exit(f"report.py: {path}: gate {gate}: unknown test {test!r}")
            targets.append(dict(gate=gate, figure=figure, ceiling=None if ceiling == "-" else ceiling,
                                test=test, limit=float(limit), unit=unit, what=what))
    return targets


def fmt(v):
    """1,234 for counts and rates, 12.34 for small figures."""
    return f"{v:,.0f}" if float(v).is_integer() or abs(v) >= 100 else f"{v:.2f}"


def judge(t, figs, smoke):
    """The table row and verdict of one gate: (row, verdict)."""
    value = figs.get(t["figure"])
    ceiling = figs.get(t["ceiling"]) if t["ceiling"] else None
    if t["test"] == "ratio>=":
        target = f"≥ {100 * t['limit']:.0f} %"
        ok = value is not None and ceiling is not None and ceiling > 0 and value / ceiling >= t["limit"]
        ratio = f"{100 * value / ceiling:.0f} %" if value is not None and ceiling else "-"
        cells = [fmt(value) + " " + t["unit"] if value is not None else "not measured",
                 fmt(ceiling) + " " + t["unit"] if ceiling is not None else "not measured", ratio]
    else:
        target = f"< {fmt(t['limit'])} {t['unit']}"
        ok = value is not None and value < t["limit"]
        cells = [fmt(value) + " " + t["unit"] if value is not None else "not measured", "", ""]
    measured = value is not None and (t["test"] != "ratio>=" or ceiling is not None)
    verdict = "-" if smoke and measured else ("PASS" if ok else "FAIL")
    if not measured:
        verdict = "not measured" if smoke else "FAIL (not measured)"
    return cells, target, verdict


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

    # Details that go with a gate's label.
    detail = {
        "command": f"{run.get('conns', '?')} conn.",
        "consumer": f"{run.get('messages', '?')} msgs, {run.get('batches', '?')} batches",
        "query": f"pool {run.get('pool', '?')}",
    }
    for s in ("command-service", "consumer-service", "query-service"):
        short = s.split("-")[0]
        detail[f"rss-{short}"] = f"at rest {figs.text('run:rss_rest_mib_' + s)} MiB"
        detail[f"ready-{short}"] = (f"dependencies up; first start "
                                   f"{figs.text('run:first_ready_ms_' + s)} ms")

    def readable_detail(rate):
        r = f"readable-{rate}"
        return (f"p50 {figs.text(r + ':readable_p50_ms')}, max {figs.text(r + ':readable_max_ms')} ms; "
                f"{figs.text(r + ':readable')} checked, achieved {figs.text(r + ':rate')}/s")

    table = ["| Figure | Measured | Ceiling | Ratio | Target | |", "|---|---:|---:|---:|---:|---|"]
    failed = False
    for t in targets:
        cells, target, verdict = judge(t, figs, smoke)
        failed |= verdict.startswith("FAIL")
        extra = detail.get(t["gate"])
        if t["gate"].startswith("readable-"):
            extra = readable_detail(t["gate"].split("-", 1)[1])
        label = t["what"] + (f" ({extra})" if extra else "")
        table.append(f"| {label} | {cells[0]} | {cells[1]} | {cells[2]} | {target} | {verdict} |")
    # Rates measured without a gate of their own: shown, not judged.
    for rate in rates:
        if f"readable-{rate}:readable_p99_ms" not in gated:
            table.append(f"| accept→readable p99 at {rate}/s ({readable_detail(rate)}) | "
                         f"{figs.text(f'readable-{rate}:readable_p99_ms')} ms | | | | - |")

    lat = ["| Latency (wrk, closed loop) | p50 | p99 | p99.9 | max |", "|---|---:|---:|---:|---:|"]
    for n in ("noop", "command", "query"):
        cells = [f"{figs.get(f'{n}.wrk:{k}') / 1000:.2f} ms" if figs.get(f"{n}.wrk:{k}") is not None
                 else "-" for k in ("p50_us", "p99_us", "p999_us", "max_us")]
        lat.append(f"| {n} | " + " | ".join(cells) + " |")
    for rate in rates:
        r = f"readable-{rate}"
        lat.append(f"| command POST at {rate}/s (vegeta) | {figs.text(r + ':post_p50_ms')} ms | "
                   f"{figs.text(r + ':post_p99_ms')} ms | | {figs.text(r + ':post_max_ms')} ms |")

    sizes = "; ".join(f"{s} {run.get('size_kib_' + s, '?')} KiB"
                      for s in ("command-service", "consumer-service", "query-service"))
    print("\n".join(table) + "\n\n" + "\n".join(lat) + f"\n\nbinaries (with debug info): {sizes}")

    readable_limit = next((t["limit"] for t in targets if t["gate"].startswith("readable-")), None)
    charts(results, out, figs, rates, readable_limit)
    with open(os.path.join(out, "REPORT.md"), "w") as f:
        f.write(f"""# Benchmark report

Written by `make bench` ({"smoke run: no thresholds" if smoke else "full run"}) on {run.get('date', '?')}, commit {run.get('rev', '?')}.

Machine: {run.get('machine', '?')}; load generator, Kafka, PostgreSQL
and the services all on these cores. {run.get('versions', '')}
Each step ran {run.get('seconds', '?')} s; {run.get('messages', '?')} messages for the consumer.
Targets: [targets.tsv](targets.tsv).

""" + "\n".join(table) + """

![throughput against ceilings](throughput.png)

""" + "\n".join(lat) + f"""

![accept → readable](readable.png)

![accept → readable over time](readable-timeline.png)

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


def charts(results, out, figs, rates, readable_limit):
    with open(os.path.join(results, "throughput.dat"), "w") as f:
        for label, a, b in (("command-service\\nPOST", "command.wrk:rps", "noop.wrk:rps"),
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
    cdfs, timelines = [], []
    for rate in rates:
        src = os.path.join(results, f"readable-{rate}.ms")
        try:
            with open(src) as f:
                ms = sorted(float(line.split()[0]) for line in f if line.strip())
        except FileNotFoundError:
            continue
        cdf = os.path.join(results, f"readable-{rate}.cdf")
        with open(cdf, "w") as f:
            f.writelines(f"{v} {100 * (i + 1) / len(ms)}\n" for i, v in enumerate(ms))
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
