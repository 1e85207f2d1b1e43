#!/usr/bin/env python3
"""trace-tree.py < JAEGER_JSON — prints the traces of a Jaeger query API
answer (GET /api/traces/<id> or /api/traces?service=…) as trees: one span a
line, indented under its parent, with its service, kind, duration and the
attributes that say what it did; links to spans of other traces follow
their span as "-> link <trace id>/<span id>". scripts/jaeger.sh trace|last
use it: the binary built from the Go module has no UI.

Exit status 0, or 1 when the answer holds no trace."""
import json
import sys
import textwrap

# Attributes worth a look, in this order; the rest are left out.
SHOWN = ("http.request.method", "http.route", "http.response.status_code", "correlation_id",
         "command_id", "messaging.system", "messaging.destination.name",
         "messaging.destination.partition.id", "messaging.kafka.offset",
         "messaging.kafka.message.key", "messaging.consumer.group.name",
         "messaging.batch.message_count", "db.system", "db.operation.name",
         "db.collection.name", "otel.status_code", "error")


def tags_of(span):
    return {t["key"]: t["value"] for t in span.get("tags") or []}


def line(span, procs, depth):
    """The span's line, and its attributes wrapped below it."""
    tags = tags_of(span)
    attrs = " ".join(f"{k}={tags[k]}" for k in SHOWN if k in tags)
    service = procs.get(span.get("processID"), {}).get("serviceName", "?")
    kind = tags.get("span.kind", "internal")
    ms = span.get("duration", 0) / 1000
    head = f"{'  ' * depth}{service}: {span['operationName']} [{kind}, {ms:.3f} ms]"
    pad = "  " * depth + "    "
    return "\n".join([head] + textwrap.wrap(attrs, 100, initial_indent=pad, subsequent_indent=pad))


def main():
    data = json.load(sys.stdin).get("data") or []
    for trace in data:
        spans = {s["spanID"]: s for s in trace.get("spans") or []}
        procs = trace.get("processes") or {}
        children, roots = {}, []
        for s in sorted(spans.values(), key=lambda s: s.get("startTime", 0)):
            parent = next((r["spanID"] for r in s.get("references") or []
                           if r.get("refType") == "CHILD_OF" and r["spanID"] in spans), None)
            if parent:
                children.setdefault(parent, []).append(s)
            else:
                roots.append(s)
        print(f"trace {trace['traceID']} ({len(spans)} spans)")

        def walk(s, depth):
            print(line(s, procs, depth))
            for r in s.get("references") or []:
                if r.get("refType") == "FOLLOWS_FROM":
                    print(f"{'  ' * (depth + 1)}-> link {r['traceID']}/{r['spanID']}")
            for c in children.get(s["spanID"], []):
                walk(c, depth + 1)

        for r in roots:
            parent = next((x for x in r.get("references") or [] if x.get("refType") == "CHILD_OF"), None)
            if parent:  # a parent outside the trace as stored: the caller's span
                print(f"  (parent {parent['spanID']}: not in Jaeger, the caller's)")
            walk(r, 1)
    return 0 if data else 1


if __name__ == "__main__":
    sys.exit(main())
