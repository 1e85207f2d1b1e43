#!/usr/bin/env python3
"""ops-cluster-check.py compose DEFAULT_CONFIG CLUSTER_CONFIG
   ops-cluster-check.py ansible RENDER_DIR

The checks of make test-ops (scripts/ops-test.sh) that the cluster form of
docker-compose.yml and of the Ansible roles is still a cluster: they fail
when an edit loses what makes it one (three KRaft voters, replication factor
3 with min.insync.replicas 2, a streaming standby, clients that list every
host), or when the single-node form changes by accident; and that compose
keeps Jaeger (pinned) with every service of either form exporting to it.

compose: DEFAULT_CONFIG and CLUSTER_CONFIG are the output of `docker compose
config` without a profile and with --profile cluster.
ansible: RENDER_DIR is what ansible/tests/render.yml wrote for the cluster
inventory ansible/tests/cluster.yml: one folder per host.

Prints what it checked; every problem is one line on stderr. Exit status 0
fine, 1 a problem found, 2 misuse."""
import os
import re
import sys
from urllib.parse import parse_qs, urlsplit

import yaml

problems = []


def need(cond, what):
    if not cond:
        problems.append(what)
    return cond


def hosts_of(url):
    """The host:port list of a libpq multi-host URL, and its query."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return netloc.split(","), parse_qs(parts.query)


def brokers(value):
    return [b.strip() for b in str(value).split(",") if b.strip()]


# ---- docker-compose.yml ------------------------------------------------------------

SINGLE = {"kafka", "postgres", "command-service", "consumer-service", "query-service",
          "prometheus", "grafana", "jaeger"}
TRIO = ("command-service", "consumer-service", "query-service")
KAFKA_NODE = {  # what every cluster node must say, beside its id and listeners
    "KAFKA_PROCESS_ROLES": "broker,controller",
    "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "3",
    "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "3",
    "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "2",
    "KAFKA_DEFAULT_REPLICATION_FACTOR": "3",
    "KAFKA_MIN_INSYNC_REPLICAS": "2",
    "KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE": "false",
    "KAFKA_BROKER_SESSION_TIMEOUT_MS": "6000",
}


def env_of(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):  # KEY=VALUE form
        env = dict(e.split("=", 1) for e in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def host_ports(svc):
    """{container port: host port} of the published ports, either syntax."""
    out = {}
    for p in svc.get("ports") or []:
        if isinstance(p, dict):
            out[int(p["target"])] = int(p["published"])
        else:
            m = re.match(r"(?:[\d.]+:)?(\d+):(\d+)(?:/tcp)?$", str(p))
            if m:
                out[int(m.group(2))] = int(m.group(1))
    return out


def check_compose(default_file, cluster_file):
    with open(default_file) as f:
        default = yaml.safe_load(f)["services"]
    with open(cluster_file) as f:
        cluster = yaml.safe_load(f)["services"]

    # Without a profile: the single-node form as before, nothing of the cluster.
    plain = {n for n, s in default.items() if not s.get("profiles")}
    need(plain == SINGLE, f"services without a profile are {sorted(plain)}, not {sorted(SINGLE)}")
    for name in ("command-service", "consumer-service"):
        if name in default:
            need(env_of(default[name]).get("KAFKA_BROKER") == "kafka:9092",
                 f"{name} (no profile): KAFKA_BROKER is not kafka:9092")
    for name in ("consumer-service", "query-service"):
        if name in default:
            env = env_of(default[name])
            need(env.get("DB_URL") == "postgresql://postgres:5432/timestamps",
                 f"{name} (no profile): DB_URL changed")
            need("DB_READ_URL" not in env, f"{name} (no profile): has DB_READ_URL")

    # Tracing: a pinned Jaeger v2 on the host's 16686 (UI) and 4318 (OTLP/HTTP),
    # and every service of either form exporting to it.
    jaeger = default.get("jaeger") or {}
    need(re.fullmatch(r"jaegertracing/jaeger:2\.\d+\.\d+", str(jaeger.get("image", ""))),
         f"tracing: jaeger image {jaeger.get('image')!r}, not a pinned jaegertracing/jaeger:2.x.y")
    for port in (16686, 4318):
        need(host_ports(jaeger).get(port) == port, f"tracing: jaeger's port {port} not published as {port}")
    for name in TRIO + tuple(n + "-cluster" for n in TRIO):
        svc = (cluster if name.endswith("-cluster") else default).get(name)
        if need(svc, f"tracing: no service {name}"):
            got = env_of(svc).get("OTEL_EXPORTER_OTLP_ENDPOINT")
            need(got == "http://jaeger:4318",
                 f"tracing: {name}: OTEL_EXPORTER_OTLP_ENDPOINT={got!r}, not 'http://jaeger:4318'")

    prof = {n: s for n, s in cluster.items() if "cluster" in (s.get("profiles") or [])}
    for n, s in prof.items():
        need(s.get("profiles") == ["cluster"], f"{n}: profiles {s.get('profiles')}, not [cluster]")

    # Three KRaft nodes, each broker+controller, one quorum of all three.
    nodes = {n: s for n, s in prof.items() if str(s.get("image", "")).startswith("apache/kafka:3.9")}
    need(len(nodes) == 3, f"profile cluster has {len(nodes)} Kafka 3.9 nodes, not 3")
    ids, cluster_ids, voters, adv_ports = {}, set(), set(), set()
    for n, s in sorted(nodes.items()):
        env = env_of(s)
        for k, v in KAFKA_NODE.items():
            need(env.get(k) == v, f"{n}: {k}={env.get(k)!r}, not {v!r}")
        ids[n] = env.get("KAFKA_NODE_ID")
        cluster_ids.add(env.get("CLUSTER_ID"))
        voters.add(env.get("KAFKA_CONTROLLER_QUORUM_VOTERS"))
        m = re.search(r"HOST://127\.0\.0\.1:(\d+)", env.get("KAFKA_ADVERTISED_LISTENERS", ""))
        if need(m, f"{n}: no HOST://127.0.0.1:PORT advertised listener"):
            port = int(m.group(1))
            adv_ports.add(port)
            need(host_ports(s).get(9094) == port,
                 f"{n}: advertises 127.0.0.1:{port} but publishes {host_ports(s)}")
        need(f"PLAINTEXT://{s.get('hostname', n)}:9092" in env.get("KAFKA_ADVERTISED_LISTENERS", ""),
             f"{n}: does not advertise PLAINTEXT://{s.get('hostname', n)}:9092")
        vols = [str(v.get("source") if isinstance(v, dict) else v).split(":")[0]
                for v in s.get("volumes") or []]
        need(len(vols) == 1 and vols[0] not in ("kafka-data",), f"{n}: volumes {vols}: one of its own")
    need(sorted(ids.values()) == ["1", "2", "3"], f"Kafka node ids {ids}, not 1, 2, 3")
    need(len(cluster_ids) == 1, f"Kafka nodes in {len(cluster_ids)} clusters (CLUSTER_ID)")
    want_voters = {f"{i}@{nodes[n].get('hostname', n)}:9093" for n, i in ids.items()}
    need(len(voters) == 1 and set(next(iter(voters)).split(",")) == want_voters,
         f"quorum voters {sorted(voters)}, not {sorted(want_voters)} on every node")
    need(adv_ports == {9092, 9094, 9096}, f"brokers on host ports {sorted(adv_ports)}, not 9092/9094/9096")
    vol_names = [tuple(nodes[n].get("volumes") or []) for n in nodes]
    need(len(set(map(str, vol_names))) == len(vol_names), "Kafka nodes share a volume")

    # PostgreSQL: a primary with a replication user, a standby copied from it.
    primary, standby = prof.get("postgres-primary"), prof.get("postgres-standby")
    if need(primary, "profile cluster has no postgres-primary"):
        penv = env_of(primary)
        need(penv.get("REPLICATION_USER"), "postgres-primary: no REPLICATION_USER")
        need(any("primary-init.sh:/docker-entrypoint-initdb.d/" in str(v) for v in primary.get("volumes") or []),
             "postgres-primary: docker/postgres/primary-init.sh not mounted in /docker-entrypoint-initdb.d")
        need(host_ports(primary).get(5432) == 5432, "postgres-primary: not on host port 5432")
    if need(standby, "profile cluster has no postgres-standby"):
        senv = env_of(standby)
        need("standby.sh" in " ".join(map(str, standby.get("entrypoint") or [])),
             "postgres-standby: entrypoint is not docker/postgres/standby.sh")
        need(senv.get("PRIMARY_HOST") == "postgres-primary", "postgres-standby: PRIMARY_HOST is not postgres-primary")
        need(senv.get("STANDBY_SLOT"), "postgres-standby: no STANDBY_SLOT (physical replication slot)")
        need(primary and senv.get("REPLICATION_USER") == env_of(primary).get("REPLICATION_USER"),
             "postgres-standby: REPLICATION_USER differs from the primary's")
        need("postgres-primary" in (standby.get("depends_on") or {}), "postgres-standby: does not wait for the primary")
        need(host_ports(standby).get(5432) == 5433, "postgres-standby: not on host port 5433")

    # The services: every broker, RF 3, the primary for writes, the standby for reads.
    want_brokers = sorted(f"{nodes[n].get('hostname', n)}:9092" for n in nodes)
    for name, port in (("command-service", 7080), ("consumer-service", 7081), ("query-service", 7082)):
        s = prof.get(name + "-cluster")
        if not need(s, f"profile cluster has no {name}-cluster"):
            continue
        env = env_of(s)
        need(host_ports(s).get(port) == port, f"{name}-cluster: not on host port {port}")
        if name != "query-service":
            need(sorted(brokers(env.get("KAFKA_BROKER", ""))) == want_brokers,
                 f"{name}-cluster: KAFKA_BROKER={env.get('KAFKA_BROKER')!r}, not all of {want_brokers}")
            need(env.get("KAFKA_TOPIC_REPLICATION") == "3", f"{name}-cluster: KAFKA_TOPIC_REPLICATION is not 3")
        if name != "command-service":
            hosts, q = hosts_of(env.get("DB_URL", ""))
            need(hosts == ["postgres-primary:5432", "postgres-standby:5432"],
                 f"{name}-cluster: DB_URL hosts {hosts}, not the primary then the standby")
            need(q.get("target_session_attrs") == ["read-write"],
                 f"{name}-cluster: DB_URL without target_session_attrs=read-write")
        if name == "query-service":
            hosts, q = hosts_of(env.get("DB_READ_URL", ""))
            need(hosts == ["postgres-standby:5432", "postgres-primary:5432"],
                 f"query-service-cluster: DB_READ_URL hosts {hosts}, not the standby then the primary")
            need(q.get("target_session_attrs") == ["prefer-standby"],
                 "query-service-cluster: DB_READ_URL without target_session_attrs=prefer-standby")
        deps = set(s.get("depends_on") or {})
        need(not deps & SINGLE, f"{name}-cluster: depends on single-node services {sorted(deps & SINGLE)}")
    print(f"single-node form: {len(plain)} services without a profile: {' '.join(sorted(plain))}")
    print(f"cluster form: {' '.join(sorted(prof))}")


# ---- Ansible ----------------------------------------------------------------------------------


def props(path):
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                out[k.strip()] = v.strip()
    return out


def envfile(path):
    out = {}
    with open(path) as f:
        for line in f:
            if line.strip() and not line.startswith("#") and "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                out[k] = yaml.safe_load(v) if v.startswith('"') else v
    return out


def check_ansible(render_dir):
    with open(os.path.join(render_dir, "expect.yml")) as f:
        expect = yaml.safe_load(f)
    kafka = expect["kafka_nodes"]        # [{host, address}] in inventory order
    need(len(kafka) == 3, f"the test inventory has {len(kafka)} Kafka nodes, not 3")
    voters_seen, ids = set(), []
    for i, node in enumerate(kafka, 1):
        p = props(os.path.join(render_dir, node["host"], "server.properties"))
        ids.append(p.get("node.id"))
        need(p.get("node.id") == str(i), f"{node['host']}: node.id={p.get('node.id')}, not {i}")
        need(p.get("process.roles") == "broker,controller", f"{node['host']}: process.roles not broker,controller")
        voters_seen.add(p.get("controller.quorum.voters"))
        need(p.get("advertised.listeners") == f"PLAINTEXT://{node['address']}:9092",
             f"{node['host']}: advertised.listeners={p.get('advertised.listeners')!r}")
        need(re.search(r"CONTROLLER://0\.0\.0\.0:9093", p.get("listeners", "")),
             f"{node['host']}: the controller listener is not reachable from the other nodes")
        for k, v in (("offsets.topic.replication.factor", "3"), ("transaction.state.log.replication.factor", "3"),
                     ("transaction.state.log.min.isr", "2"), ("default.replication.factor", "3"),
                     ("min.insync.replicas", "2"), ("unclean.leader.election.enable", "false"),
                     ("broker.session.timeout.ms", "6000")):
            need(p.get(k) == v, f"{node['host']}: {k}={p.get(k)!r}, not {v}")
    want = ",".join(f"{i}@{n['address']}:9093" for i, n in enumerate(kafka, 1))
    need(voters_seen == {want}, f"controller.quorum.voters {voters_seen}, not {want} on every node")

    want_brokers = ",".join(f"{n['address']}:9092" for n in kafka)
    primary, standby = expect["db_primary"], expect["db_standby"]
    for svc in ("command-service", "consumer-service", "query-service"):
        for web in expect["web_nodes"]:
            env = envfile(os.path.join(render_dir, web, svc + ".env"))
            if svc != "query-service":
                need(env.get("KAFKA_BROKER") == want_brokers,
                     f"{web} {svc}: KAFKA_BROKER={env.get('KAFKA_BROKER')!r}, not {want_brokers}")
                need(env.get("KAFKA_TOPIC_REPLICATION") == "3", f"{web} {svc}: KAFKA_TOPIC_REPLICATION is not 3")
            if svc != "command-service":
                hosts, q = hosts_of(env.get("DB_URL", ""))
                need(hosts == [f"{primary}:5432", f"{standby}:5432"],
                     f"{web} {svc}: DB_URL hosts {hosts}, not the primary then the standby")
                need(q.get("target_session_attrs") == ["read-write"], f"{web} {svc}: DB_URL not read-write")
            if svc == "query-service":
                hosts, q = hosts_of(env.get("DB_READ_URL", ""))
                need(hosts == [f"{standby}:5432", f"{primary}:5432"],
                     f"{web} query-service: DB_READ_URL hosts {hosts}, not the standby then the primary")
                need(q.get("target_session_attrs") == ["prefer-standby"], f"{web} query-service: DB_READ_URL not prefer-standby")

    # PostgreSQL: the primary lets the standby stream through a slot; the
    # standby is copied from the primary with pg_basebackup -R through that slot.
    plan = {}
    for host, role in ((expect["db_primary_host"], "primary"), (expect["db_standby_host"], "standby")):
        conf = props(os.path.join(render_dir, host, "timestamps.conf"))
        need(conf.get("wal_level") == "replica", f"{host}: wal_level is not replica")
        need(int(conf.get("max_wal_senders", "0")) >= 2, f"{host}: max_wal_senders < 2")
        need(int(conf.get("max_replication_slots", "0")) >= 1, f"{host}: max_replication_slots < 1")
        need(conf.get("hot_standby") == "on", f"{host}: hot_standby not on")
        with open(os.path.join(render_dir, host, "postgresql.yml")) as f:
            plan[role] = yaml.safe_load(f)
        need(plan[role]["role"] == role, f"{host}: PostgreSQL role {plan[role]['role']}, not {role}")
    p, sb = plan["primary"], plan["standby"]
    argv = sb["basebackup"]
    need(argv[:1] == ["pg_basebackup"] and "-R" in argv, f"standby: not built with pg_basebackup -R: {argv}")
    need("-h" in argv and argv[argv.index("-h") + 1] == primary,
         f"standby: pg_basebackup does not copy from the primary {primary}: {argv}")
    need("-S" in argv and argv[argv.index("-S") + 1] == sb["slot"],
         f"standby: pg_basebackup without its replication slot: {argv}")
    need(sb["slot"] in p["slots"], f"primary: slots {p['slots']} lack the standby's {sb['slot']}")
    need(f"{standby}/32" in p["replication_from"],
         f"primary: pg_hba lets {p['replication_from']} stream, not the standby {standby}")
    print(f"Kafka nodes: {' '.join(n['host'] for n in kafka)}, voters {want}")
    print(f"PostgreSQL primary {primary}, standby {standby}; web nodes: {' '.join(expect['web_nodes'])}")


def main(argv):
    if len(argv) == 4 and argv[1] == "compose":
        check_compose(argv[2], argv[3])
    elif len(argv) == 3 and argv[1] == "ansible":
        check_ansible(argv[2])
    else:
        print(__doc__.split("\n\n")[0], file=sys.stderr)
        return 2
    for p in problems:
        print(f"cluster form: {p}", file=sys.stderr)
    if not problems:
        print("the cluster form is complete")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
