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
        wait_late wait_unsent wait_not_200
                                         GETs sent after their POST (not
                                         counted), GETs the load generator did
                                         not send, GETs that did not get 200
        stream_n stream_p50_ms stream_p99_ms stream_missing
        stream_duplicates stream_reconnects
                                         POST's 200 -> its event on the stream;
                                         events never received, received twice,
                                         and how often the follower was cut off
                                         and resumed with Last-Event-ID
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
    """As an EventSource does: when the service cuts the stream off (a reader
    that fell behind its ring), reconnect with Last-Event-ID; the number of
    reconnections goes to OUT.reconnects."""
    u = urllib.parse.urlsplit(url)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    until = time.time() + 600
    last_id, reconnects = None, 0
    with open(out, "w") as f:
        while not stop and time.time() < until:
            try:
                s = socket.create_connection((u.hostname, u.port), timeout=1)
            except OSError:
                time.sleep(0.1)
                continue
            resume = f"Last-Event-ID: {last_id}\r\n" if last_id is not None else ""
            s.sendall(f"GET {u.path or '/'}{'?' + u.query if u.query else ''} HTTP/1.1\r\n"
                      f"Host: {u.hostname}\r\n{resume}\r\n".encode())
            buf = b""
            while not stop and time.time() < until:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    continue
                except InterruptedError:
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                now = time.time()
                buf += chunk
                events = buf.split(b"\n\n")
                buf = events.pop()
                for event in events:
                    for line in event.split(b"\n"):
                        if line.startswith(b"id: "):
                            last_id = line[4:].decode()
                    i = event.find(b'"id":"')
                    if i >= 0:
                        f.write(f"{event[i + 6:i + 42].decode()}\t{now:.6f}\n")
            s.close()
            if not stop and time.time() < until:
                reconnects += 1
    with open(out + ".reconnects", "w") as f:
        f.write(f"{reconnects}\n")


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
    events, duplicates = {}, 0
    with open(events_path) as f:
        for line in f:
            rid, at = line.split("\t")
            if rid in events:
                duplicates += 1
            events.setdefault(rid, float(at))
    try:
        with open(events_path + ".reconnects") as f:
            reconnects = int(f.read())
    except (OSError, ValueError):
        reconnects = 0
    wait, late, unsent, not200, stream, missing = [], 0, 0, 0, [], 0
    for rid, (psent, pdone, pcode) in posts.items():
        if pcode != 200:
            continue
        if rid in events:
            stream.append((events[rid] - pdone) * 1000)
        else:
            missing += 1
        g = gets.get(rid)
        if g is None:
            unsent += 1  # the load generator could not send it at the rate
        elif g[2] != 200:
            not200 += 1
        elif g[0] > psent:
            late += 1
        else:
            wait.append((g[1] - pdone) * 1000)
    print(f"wait_n={len(wait)} wait_p50_ms={pct(wait, 0.5):.2f} wait_p99_ms={pct(wait, 0.99):.2f} "
          f"wait_late={late} wait_unsent={unsent} wait_not_200={not200} stream_n={len(stream)} "
          f"stream_p50_ms={pct(stream, 0.5):.2f} stream_p99_ms={pct(stream, 0.99):.2f} "
          f"stream_missing={missing} stream_duplicates={duplicates} "
          f"stream_reconnects={reconnects}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "follow":
        follow(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "report":
        report(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit("usage: live.py follow URL OUT | live.py report GETS POSTS EVENTS")
