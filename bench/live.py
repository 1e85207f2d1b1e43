#!/usr/bin/env python3
"""live.py: the figures of bench/steps/live.sh (issue 12: the live side).

  live.py follow URL OUT
      reads the Server-Sent Events stream at URL until SIGTERM (or 10
      minutes) and writes one line per event to OUT: the record's id and the
      wall time it arrived (seconds).
  live.py report GETS POSTS EVENTS
      GETS and POSTS are `vegeta encode --to json` results of the waiting
      GETs and of the POSTs (same ids: the POSTs carry an Idempotency-Key
      whose UUIDv5 is the id the GET waits for); EVENTS is what follow
      wrote. Prints one line of key=value figures:
        wait_n wait_p50_ms wait_p99_ms   POST's 200 -> the waiting GET's 200,
                                         over the GETs sent before their POST
        wait_late wait_not_200           GETs sent after their POST (not
                                         counted), GETs that did not get 200
        stream_n stream_p50_ms stream_p99_ms stream_missing
                                         POST's 200 -> its event on the stream
"""
import base64
import json
import signal
import socket
import sys
import time
import urllib.parse
from datetime import datetime


def follow(url, out):
    u = urllib.parse.urlsplit(url)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    s = socket.create_connection((u.hostname, u.port), timeout=1)
    s.sendall(f"GET {u.path or '/'}{'?' + u.query if u.query else ''} HTTP/1.1\r\n"
              f"Host: {u.hostname}\r\n\r\n".encode())
    buf = b""
    until = time.time() + 600
    with open(out, "w") as f:
        while not stop and time.time() < until:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                continue
            except InterruptedError:
                continue
            if not chunk:
                break
            now = time.time()
            buf += chunk
            while b"\n\n" in buf:
                event, buf = buf.split(b"\n\n", 1)
                i = event.find(b'"id":"')
                if i >= 0:
                    f.write(f"{event[i + 6:i + 42].decode()}\t{now:.6f}\n")


def wall(ts):
    """vegeta's RFC 3339 nanosecond timestamp, in seconds."""
    head, frac = ts.rstrip("Z").split(".") if "." in ts else (ts.rstrip("Z"), "0")
    frac = frac.split("+")[0].split("-")[0]
    base = datetime.fromisoformat(head + "+00:00").timestamp()
    return base + float("0." + frac)


def results(path):
    """id -> (sent, done, code) of every result in a vegeta json file."""
    out = {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            sent = wall(r["timestamp"])
            done = sent + r["latency"] / 1e9
            body = base64.b64decode(r.get("body") or "").decode(errors="replace")
            i = body.find('"id":"')
            rid = body[i + 6:i + 42] if i >= 0 else r.get("url", "").rsplit("/", 1)[-1][:36]
            out[rid] = (sent, done, r["code"])
    return out


def pct(v, p):
    if not v:
        return 0
    v = sorted(v)
    return v[min(len(v) - 1, int(p * len(v)))]


def report(gets_path, posts_path, events_path):
    gets, posts = results(gets_path), results(posts_path)
    events = {}
    with open(events_path) as f:
        for line in f:
            rid, at = line.split("\t")
            events.setdefault(rid, float(at))
    wait, late, not200, stream, missing = [], 0, 0, [], 0
    for rid, (psent, pdone, pcode) in posts.items():
        if pcode != 200:
            continue
        if rid in events:
            stream.append((events[rid] - pdone) * 1000)
        else:
            missing += 1
        g = gets.get(rid)
        if g is None or g[2] != 200:
            not200 += 1
        elif g[0] > psent:
            late += 1
        else:
            wait.append((g[1] - pdone) * 1000)
    print(f"wait_n={len(wait)} wait_p50_ms={pct(wait, 0.5):.2f} wait_p99_ms={pct(wait, 0.99):.2f} "
          f"wait_late={late} wait_not_200={not200} stream_n={len(stream)} "
          f"stream_p50_ms={pct(stream, 0.5):.2f} stream_p99_ms={pct(stream, 0.99):.2f} "
          f"stream_missing={missing}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "follow":
        follow(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "report":
        report(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit("usage: live.py follow URL OUT | live.py report GETS POSTS EVENTS")
