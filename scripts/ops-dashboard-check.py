#!/usr/bin/env python3
"""ops-dashboard-check.py DASHBOARD RULES_OUT URL... — checks the Grafana
dashboard against the running services: every metric its queries name must be
exported by one of the /metrics URLs. Writes the queries as a Prometheus rules
file to RULES_OUT, so that `promtool check rules` can parse them.
A query that selects by a __name__ regex (consumer lag) only warns while no
service exports a matching metric, and fails if a "lag" metric exists that the
regex misses. Exit status: 0 fine, 1 a query names a metric nobody exports."""
import json
import re
import sys
import urllib.request

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
            "and", "or", "unless", "offset", "inf", "nan"}


def names_in(expr):
    """Metric names an expression selects, and __name__ regexes it uses."""
    regexes = re.findall(r'__name__=~"([^"]*)"', expr)
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)          # string literals
    e = re.sub(r"\{[^}]*\}", "", e)                         # label matchers
    e = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", e)  # grouping labels
    e = re.sub(r"\[[^\]]*\]", "", e)                        # range selectors
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        rest = e[m.end():].lstrip()
        if rest.startswith("(") or m.group(0).lower() in KEYWORDS:
            continue                                        # a function or a keyword
        names.add(m.group(0))
    return names, regexes


def exported(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode("utf-8")
    out = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            out.add(re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line).group(0))
    return out


def main():
    dashboard, rules_out, urls = sys.argv[1], sys.argv[2], sys.argv[3:]
    with open(dashboard, encoding="utf-8") as f:
        d = json.load(f)
    exprs = [(p["title"], t["expr"]) for p in d["panels"] for t in p.get("targets", [])]
    with open(rules_out, "w", encoding="utf-8") as f:
        f.write("groups:\n  - name: dashboard\n    rules:\n")
        for i, (_, e) in enumerate(exprs, 1):
            f.write(f"      - record: dashboard:query{i}\n        expr: {json.dumps(e)}\n")
    have = set()
    for u in urls:
        have |= exported(u)
    bad = 0
    for title, e in exprs:
        names, regexes = names_in(e)
        for n in sorted(names - have):
            print(f"dashboard: panel '{title}' uses {n}, which no service exports")
            bad = 1
        for rx in regexes:
            if not any(re.fullmatch(rx, n) for n in have):
                lag = sorted(n for n in have if "lag" in n)
                if lag:
                    print(f"dashboard: panel '{title}' selects {rx!r}, but the lag metric is {', '.join(lag)}")
                    bad = 1
                else:
                    print(f"dashboard: note: panel '{title}': no metric matches {rx!r} yet")
    print(f"dashboard: {len(exprs)} queries, {len(have)} metric names exported")
    return bad


if __name__ == "__main__":
    sys.exit(main())
