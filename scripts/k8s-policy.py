#!/usr/bin/env python3
"""k8s-policy.py — the trio's rules for its Kubernetes manifests.

usage: k8s-policy.py [--vars DIR] FILE              check one rendered overlay
       k8s-policy.py --self-test [--vars DIR] FILE  FILE must pass; then each
                    rule is broken in turn in a copy (written to a temp
                    directory) and the check must catch it
DIR holds <service>.vars, the variables each service reads, one a line
(k8s-check.sh takes them from each binary's --help); without it the config
rule is not checked.

The rules (each violation is one line "FILE: Kind/name: rule: what"):
  liveness-probe    every container: an HTTP liveness probe on /health
  readiness-probe   every container: an HTTP readiness probe on /ready
  startup-probe     every container: a startup probe
  requests, limits  every container: cpu and memory requests and limits,
                    requests not above limits
  run-as-non-root   runAsNonRoot true and a non-zero runAsUser (container or pod)
  read-only-root    readOnlyRootFilesystem true
  no-privilege-escalation  allowPrivilegeEscalation false
  drop-all          capabilities.drop has ALL
  seccomp           seccompProfile RuntimeDefault (container or pod)
  pre-stop          a preStop pause (exec sleep N, or the sleep action)
  grace-period      terminationGracePeriodSeconds > preStop pause + the 10 s a
                    service may take to stop after SIGTERM (shared/DESIGN.md)
  pdb               every Deployment: a PodDisruptionBudget selecting its pods
  hpa               command-service and query-service: an autoscaling/v2 HPA
                    on CPU targeting the Deployment
  keda              consumer-service: a KEDA ScaledObject on the Kafka lag, its
                    maxReplicaCount = KAFKA_TOPIC_PARTITIONS, its broker, group
                    and topic those of the ConfigMap
  db-secret         consumer-service and query-service: DB_PASSWORD_FILE set,
                    in a directory mounted from a Secret (with that key when
                    the Secret is rendered); no DB_PASSWORD in plain text
  image             the image is <registry/>timestamp-trio/<container name>
  monitor           a PodMonitor or ServiceMonitor scraping each Deployment's
                    pods on /metrics
  config            every variable a container's env sets is one its service
                    reads, and every key of a ConfigMap it takes whole
                    (envFrom) is read by one of the services taking it: a
                    misspelt name would be ignored, leaving the default
Exit 1 on any violation (self-test: on any rule not caught), 2 for bad
usage or unreadable input.
"""
import argparse
import copy
import os
import re
import sys
import tempfile

import yaml

STOP_BUDGET_S = 10  # shared/DESIGN.md: exits within 10 s of SIGTERM
HPA_SERVICES = {"command-service", "query-service"}
KEDA_SERVICES = {"consumer-service"}
DB_SERVICES = {"consumer-service", "query-service"}


def name_of(doc):
    return "%s/%s" % (doc.get("kind"), (doc.get("metadata") or {}).get("name"))


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def selects(selector, labels):
    """A label selector (matchLabels only, as these files use) matches labels."""
    ml = (selector or {}).get("matchLabels") or {}
    return bool(ml) and all(labels.get(k) == v for k, v in ml.items())


def pre_stop_seconds(container):
    """The preStop pause in seconds, or None when there is none."""
    ps = (container.get("lifecycle") or {}).get("preStop") or {}
    if "sleep" in ps:
        return ps["sleep"].get("seconds")
    cmd = (ps.get("exec") or {}).get("command") or []
    if len(cmd) == 2 and os.path.basename(str(cmd[0])) == "sleep" and str(cmd[1]).isdigit():
        return int(cmd[1])
    return None


def config_data(docs):
    data = {}
    for cm in by_kind(docs, "ConfigMap"):
        data.update(cm.get("data") or {})
    return data


def check_container(pod, c, bad):
    cname = c.get("name", "?")
    for rule, probe, path in (("liveness-probe", "livenessProbe", "/health"),
                              ("readiness-probe", "readinessProbe", "/ready")):
        p = c.get(probe)
        if not p:
            bad(rule, "container %s has no %s" % (cname, probe))
        elif (p.get("httpGet") or {}).get("path") != path:
            bad(rule, "container %s: %s is not an HTTP GET of %s" % (cname, probe, path))
    if not c.get("startupProbe"):
        bad("startup-probe", "container %s has no startupProbe" % cname)

    res = c.get("resources") or {}
    for rule in ("requests", "limits"):
        have = res.get(rule) or {}
        for r in ("cpu", "memory"):
            if r not in have:
                bad(rule, "container %s has no %s.%s" % (cname, rule, r))
    for r in ("cpu", "memory"):
        req, lim = (res.get("requests") or {}).get(r), (res.get("limits") or {}).get(r)
        try:
            if req is not None and lim is not None and quantity(req) > quantity(lim):
                bad("requests", "container %s: %s request %s above its limit %s"
                    % (cname, r, req, lim))
        except ValueError as e:
            bad("requests", "container %s: %s: %s" % (cname, r, e))

    psc = pod.get("securityContext") or {}
    csc = c.get("securityContext") or {}

    def eff(key):
        return csc[key] if key in csc else psc.get(key)

    if eff("runAsNonRoot") is not True:
        bad("run-as-non-root", "container %s: runAsNonRoot is not true" % cname)
    if eff("runAsUser") in (None, 0):
        bad("run-as-non-root", "container %s: no non-zero runAsUser" % cname)
    if csc.get("readOnlyRootFilesystem") is not True:
        bad("read-only-root", "container %s: readOnlyRootFilesystem is not true" % cname)
    if csc.get("allowPrivilegeEscalation") is not False:
        bad("no-privilege-escalation", "container %s: allowPrivilegeEscalation is not false" % cname)
    if "ALL" not in ((csc.get("capabilities") or {}).get("drop") or []):
        bad("drop-all", "container %s: capabilities.drop has no ALL" % cname)
    if (eff("seccompProfile") or {}).get("type") != "RuntimeDefault":
        bad("seccomp", "container %s: seccompProfile is not RuntimeDefault" % cname)

    pause = pre_stop_seconds(c)
    if pause is None:
        bad("pre-stop", "container %s has no preStop pause (exec sleep N or sleep)" % cname)
    grace = pod.get("terminationGracePeriodSeconds", 30)  # Kubernetes' default
    need = (pause or 0) + STOP_BUDGET_S
    if not isinstance(grace, int) or grace <= need:
        bad("grace-period", "container %s: terminationGracePeriodSeconds %s is not above the "
            "preStop pause %s s + %d s to stop" % (cname, grace, pause or 0, STOP_BUDGET_S))

    if not re.fullmatch(r"([^/]+/)*timestamp-trio/%s(:[^/]+|@sha256:[0-9a-f]+)?" % re.escape(cname),
                        str(c.get("image", ""))):
        bad("image", "container %s: image %s is not <registry/>timestamp-trio/%s"
            % (cname, c.get("image"), cname))


def quantity(q):
    """A Kubernetes quantity as a float (enough to compare cpu and memory)."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
             "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([a-zA-Z]*)", str(q))
    if not m or (m.group(2) and m.group(2) not in units):
        raise ValueError("not a quantity: %r" % q)
    return float(m.group(1)) * units.get(m.group(2), 1)


def check_db_secret(docs, pod, c, bad):
    cname = c.get("name", "?")
    env = {e.get("name"): e for e in c.get("env") or []}
    if "DB_PASSWORD" in env or "DB_PASSWORD" in config_data(docs):
        bad("db-secret", "container %s: DB_PASSWORD in plain text (use DB_PASSWORD_FILE)" % cname)
    path = (env.get("DB_PASSWORD_FILE") or {}).get("value")
    if not path:
        bad("db-secret", "container %s: DB_PASSWORD_FILE is not set" % cname)
        return
    mounts = [m for m in c.get("volumeMounts") or []
              if m.get("mountPath", "").rstrip("/") == os.path.dirname(path)]
    vols = {v.get("name"): v for v in pod.get("volumes") or []}
    secret = None
    for m in mounts:
        secret = (vols.get(m.get("name")) or {}).get("secret")
        if secret:
            break
    if not secret:
        bad("db-secret", "container %s: DB_PASSWORD_FILE %s is not in a directory mounted "
            "from a Secret" % (cname, path))
        return
    key = os.path.basename(path)
    for item in secret.get("items") or []:
        if item.get("path") == key:
            key = item.get("key")
    rendered = [s for s in by_kind(docs, "Secret")
                if s["metadata"].get("name") == secret.get("secretName")]
    for s in rendered:  # absent: created apart from these files (production)
        if key not in (s.get("data") or {}) and key not in (s.get("stringData") or {}):
            bad("db-secret", "container %s: Secret %s has no key %s for DB_PASSWORD_FILE"
                % (cname, secret.get("secretName"), key))


def check(docs, known=None):
    """All violations of docs, as (object, rule, what) tuples. known maps a
    service to the set of variables it reads (None: the config rule is off)."""
    out = []
    cfg = config_data(docs)
    deployments = by_kind(docs, "Deployment")
    if not deployments:
        out.append(("(file)", "deployments", "no Deployment in it"))
    for d in deployments:
        dname = d["metadata"]["name"]
        tmpl = d["spec"]["template"]
        pod = tmpl["spec"]
        labels = tmpl["metadata"].get("labels") or {}

        def bad(rule, what, obj=name_of(d)):
            out.append((obj, rule, what))

        for c in pod.get("containers") or []:
            check_container(pod, c, bad)
            if dname in DB_SERVICES:
                check_db_secret(docs, pod, c, bad)

        if not any(selects(p["spec"].get("selector"), labels)
                   for p in by_kind(docs, "PodDisruptionBudget")):
            bad("pdb", "no PodDisruptionBudget selects its pods")

        hpas = [h for h in by_kind(docs, "HorizontalPodAutoscaler")
                if h["spec"].get("scaleTargetRef", {}).get("kind") == "Deployment"
                and h["spec"]["scaleTargetRef"].get("name") == dname]
        if dname in HPA_SERVICES:
            cpu = [h for h in hpas if h.get("apiVersion") == "autoscaling/v2" and any(
                (m.get("resource") or {}).get("name") == "cpu" for m in h["spec"].get("metrics") or [])]
            if not cpu:
                bad("hpa", "no autoscaling/v2 HorizontalPodAutoscaler on CPU targets it")
        if dname in KEDA_SERVICES:
            check_keda(docs, dname, cfg, bad)

        monitored = False
        for m in by_kind(docs, "PodMonitor"):
            if selects(m["spec"].get("selector"), labels) and any(
                    e.get("path", "/metrics") == "/metrics"
                    for e in m["spec"].get("podMetricsEndpoints") or []):
                monitored = True
        for m in by_kind(docs, "ServiceMonitor"):
            for s in by_kind(docs, "Service"):
                if selects({"matchLabels": s["spec"].get("selector")}, labels) and \
                        selects(m["spec"].get("selector"), s["metadata"].get("labels") or {}) and \
                        any(e.get("path", "/metrics") == "/metrics"
                            for e in m["spec"].get("endpoints") or []):
                    monitored = True
        if not monitored:
            bad("monitor", "no PodMonitor or ServiceMonitor scrapes its pods' /metrics")
    if known is not None:
        check_config(docs, known, out)
    return out


def check_config(docs, known, out):
    readers = {}  # ConfigMap name → the services that take it whole
    for d in by_kind(docs, "Deployment"):
        for c in d["spec"]["template"]["spec"].get("containers") or []:
            cname = c.get("name")
            if cname not in known:
                out.append((name_of(d), "config", "no list of the variables %s reads" % cname))
                continue
            for e in c.get("env") or []:
                if e.get("name") not in known[cname]:
                    out.append((name_of(d), "config", "container %s: %s is not a variable %s reads"
                                % (cname, e.get("name"), cname)))
            for ef in c.get("envFrom") or []:
                ref = (ef.get("configMapRef") or {}).get("name")
                if ref:
                    readers.setdefault(ref, set()).add(cname)
    for cm in by_kind(docs, "ConfigMap"):
        svcs = readers.get(cm["metadata"]["name"])
        if not svcs:
            continue
        read = set().union(*(known[x] for x in svcs))
        for key in cm.get("data") or {}:
            if key not in read:
                out.append((name_of(cm), "config", "%s is read by none of %s"
                            % (key, ", ".join(sorted(svcs)))))


def check_keda(docs, dname, cfg, bad):
    sos = [s for s in by_kind(docs, "ScaledObject")
           if s["spec"].get("scaleTargetRef", {}).get("name") == dname]
    if not sos:
        bad("keda", "no KEDA ScaledObject targets it")
        return
    for so in sos:
        kafka = [t for t in so["spec"].get("triggers") or [] if t.get("type") == "kafka"]
        if not kafka:
            bad("keda", "%s has no kafka trigger" % name_of(so))
            continue
        md = kafka[0].get("metadata") or {}
        want = {"bootstrapServers": cfg.get("KAFKA_BROKER"),
                "consumerGroup": cfg.get("KAFKA_GROUP_ID"),
                "topic": cfg.get("KAFKA_CONSUMER_TOPIC")}
        for k, v in want.items():
            if md.get(k) != v:
                bad("keda", "%s: trigger %s %r is not the ConfigMap's %r" % (name_of(so), k, md.get(k), v))
        if "lagThreshold" not in md:
            bad("keda", "%s: the kafka trigger has no lagThreshold" % name_of(so))
        parts = cfg.get("KAFKA_TOPIC_PARTITIONS", "6")  # the service's default
        if str(so["spec"].get("maxReplicaCount")) != str(parts):
            bad("keda", "%s: maxReplicaCount %s is not KAFKA_TOPIC_PARTITIONS %s (a member "
                "beyond the partitions gets none)" % (name_of(so), so["spec"].get("maxReplicaCount"), parts))


def load(path):
    try:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
    except (OSError, yaml.YAMLError) as e:
        print("k8s-policy: %s: %s" % (path, str(e).replace("\n", " ")), file=sys.stderr)
        sys.exit(2)
    if not all(isinstance(d, dict) and "kind" in d for d in docs):
        print("k8s-policy: %s: a document is not a Kubernetes object" % path, file=sys.stderr)
        sys.exit(2)
    return docs


def load_vars(d):
    """{service: set of variables} from DIR/<service>.vars."""
    known = {}
    try:
        for f in os.listdir(d):
            if f.endswith(".vars"):
                with open(os.path.join(d, f)) as fh:
                    known[f[:-5]] = {x.strip() for x in fh if x.strip()}
    except OSError as e:
        print("k8s-policy: --vars %s: %s" % (d, e.strerror), file=sys.stderr)
        sys.exit(2)
    if not known:
        print("k8s-policy: --vars %s: no <service>.vars in it" % d, file=sys.stderr)
        sys.exit(2)
    return known


def run(path, known):
    """Checks one file, printing its violations; returns them."""
    try:
        out = check(load(path), known)
    except (KeyError, TypeError, AttributeError, IndexError) as e:
        # The schemas (k8s-validate.py) say what; this check assumes valid objects.
        print("k8s-policy: %s: an object lacks a required field (%s: %s): validate it first"
              % (path, type(e).__name__, e), file=sys.stderr)
        sys.exit(2)
    for obj, rule, what in out:
        print("%s: %s: %s: %s" % (path, obj, rule, what))
    return out


# ---- the self-test: each rule broken in turn --------------------------------

def containers(docs, dname):
    d = [x for x in by_kind(docs, "Deployment") if x["metadata"]["name"] == dname][0]
    return d["spec"]["template"]["spec"], d["spec"]["template"]["spec"]["containers"][0]


def drop_key(get, key):
    def brk(docs, dname):
        obj = get(*containers(docs, dname))
        if key not in obj:
            return False
        del obj[key]
        return True
    return brk


def drop_pod_and_container(key):
    """Removes key from the pod's and the container's securityContext."""
    def brk(docs, dname):
        pod, c = containers(docs, dname)
        found = False
        for sc in (pod.get("securityContext") or {}, c.get("securityContext") or {}):
            found |= sc.pop(key, None) is not None
        return found
    return brk


def drop_docs(kind, match):
    def brk(docs, dname):
        n = len(docs)
        docs[:] = [x for x in docs if not (x.get("kind") == kind and match(x, dname))]
        return len(docs) < n
    return brk


def target_is(x, dname):
    return x["spec"].get("scaleTargetRef", {}).get("name") == dname


def grace_at_pause(docs, dname):
    pod, c = containers(docs, dname)
    pod["terminationGracePeriodSeconds"] = (pre_stop_seconds(c) or 0) + STOP_BUDGET_S
    return True


def env_drop(name):
    def brk(docs, dname):
        c = containers(docs, dname)[1]
        n = len(c.get("env") or [])
        c["env"] = [e for e in c.get("env") or [] if e.get("name") != name]
        return len(c["env"]) < n
    return brk


def keda_set(field, value):
    def brk(docs, dname):
        for so in by_kind(docs, "ScaledObject"):
            if target_is(so, dname):
                so["spec"][field] = value
                return True
        return False
    return brk


def password_in_config(docs, dname):
    by_kind(docs, "ConfigMap")[0].setdefault("data", {})["DB_PASSWORD"] = "secret"
    return True


def env_misspelt(docs, dname):
    c = containers(docs, dname)[1]
    c.setdefault("env", []).append({"name": "OTEL_SERVICE_NAM", "value": dname})
    return True


def config_key_misspelt(docs, dname):
    data = by_kind(docs, "ConfigMap")[0].setdefault("data", {})
    data["KAFKA_BROKERS"] = data.pop("KAFKA_BROKER", "kafka:9092")
    return True


def image_renamed(docs, dname):
    c = containers(docs, dname)[1]
    c["image"] = "busybox:1.36"
    return True


# (rule, what is broken, breaker(docs, deployment name) → applied?, the
# Deployments it applies to: None for all)
BREAKERS = [
    ("liveness-probe", "livenessProbe removed", drop_key(lambda p, c: c, "livenessProbe"), None),
    ("readiness-probe", "readinessProbe removed", drop_key(lambda p, c: c, "readinessProbe"), None),
    ("startup-probe", "startupProbe removed", drop_key(lambda p, c: c, "startupProbe"), None),
    ("requests", "resources.requests removed", drop_key(lambda p, c: c["resources"], "requests"), None),
    ("limits", "resources.limits removed", drop_key(lambda p, c: c["resources"], "limits"), None),
    ("run-as-non-root", "runAsNonRoot removed", drop_pod_and_container("runAsNonRoot"), None),
    ("run-as-non-root", "runAsUser removed", drop_pod_and_container("runAsUser"), None),
    ("read-only-root", "readOnlyRootFilesystem removed",
     drop_key(lambda p, c: c["securityContext"], "readOnlyRootFilesystem"), None),
    ("no-privilege-escalation", "allowPrivilegeEscalation removed",
     drop_key(lambda p, c: c["securityContext"], "allowPrivilegeEscalation"), None),
    ("drop-all", "capabilities removed", drop_key(lambda p, c: c["securityContext"], "capabilities"), None),
    ("seccomp", "seccompProfile removed", drop_pod_and_container("seccompProfile"), None),
    ("pre-stop", "lifecycle removed", drop_key(lambda p, c: c, "lifecycle"), None),
    ("grace-period", "terminationGracePeriodSeconds = preStop + 10 s", grace_at_pause, None),
    ("pdb", "its PodDisruptionBudget removed",
     drop_docs("PodDisruptionBudget", lambda x, d: x["metadata"]["name"] == d), None),
    ("hpa", "its HorizontalPodAutoscaler removed", drop_docs("HorizontalPodAutoscaler", target_is),
     HPA_SERVICES),
    ("keda", "its ScaledObject removed", drop_docs("ScaledObject", target_is), KEDA_SERVICES),
    ("keda", "maxReplicaCount one above the partitions", keda_set("maxReplicaCount", 7), KEDA_SERVICES),
    ("db-secret", "DB_PASSWORD_FILE removed", env_drop("DB_PASSWORD_FILE"), DB_SERVICES),
    ("db-secret", "the secret's volumeMount removed",
     drop_key(lambda p, c: c, "volumeMounts"), DB_SERVICES),
    ("db-secret", "DB_PASSWORD in the ConfigMap", password_in_config, DB_SERVICES),
    ("image", "image not the service's", image_renamed, None),
    ("monitor", "the PodMonitor removed", drop_docs("PodMonitor", lambda x, d: True), None),
    ("config", "OTEL_SERVICE_NAM in its env", env_misspelt, None),
    ("config", "KAFKA_BROKERS in the ConfigMap", config_key_misspelt, {"command-service"}),
]


def self_test(path, known):
    docs = load(path)
    if run(path, known):
        print("self-test: %s itself breaks the rules" % path)
        return 1
    names = [d["metadata"]["name"] for d in by_kind(docs, "Deployment")]
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="k8s-policy-") as tmp:
        for i, (rule, what, brk, only) in enumerate(BREAKERS):
            if rule == "config" and known is None:
                continue
            for dname in names:
                if only is not None and dname not in only:
                    continue
                broken = copy.deepcopy(docs)
                if not brk(broken, dname):
                    print("self-test: FAIL %s (%s in %s): nothing to break" % (rule, what, dname))
                    failed += 1
                    continue
                bpath = os.path.join(tmp, "%02d-%s-%s.yaml" % (i, rule, dname))
                with open(bpath, "w") as f:
                    yaml.safe_dump_all(broken, f)
                rules = {r for _, r, _ in check(load(bpath), known)}
                if rule in rules:
                    passed += 1
                else:
                    print("self-test: FAIL %s (%s in %s): not caught (found: %s)"
                          % (rule, what, dname, ", ".join(sorted(rules)) or "nothing"))
                    failed += 1
    print("self-test: %d of %d broken copies of %s caught, each by the rule it breaks"
          % (passed, passed + failed, path))
    print("k8s-policy self-test: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description="the trio's policy for its Kubernetes manifests")
    ap.add_argument("--self-test", action="store_true",
                    help="FILE must pass, and each rule broken in a copy of it must be caught")
    ap.add_argument("--vars", metavar="DIR", help="DIR/<service>.vars: the variables each reads")
    ap.add_argument("file")
    args = ap.parse_args()
    known = load_vars(args.vars) if args.vars else None
    if args.self_test:
        return self_test(args.file, known)
    out = run(args.file, known)
    if not out:
        print("%s: every policy rule holds%s" % (
            args.file, "" if known else " (config not checked: no --vars)"))
    return 1 if out else 0


if __name__ == "__main__":
    sys.exit(main())
