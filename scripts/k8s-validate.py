#!/usr/bin/env python3
"""k8s-validate.py — schema validation of rendered Kubernetes manifests.

usage: k8s-validate.py -k VERSION FILE...

Each FILE holds YAML documents (kustomize build output). A Kubernetes kind is
validated, strictly (an unknown field is an error), against the OpenAPI
schemas that the kubernetes-validate package ships for VERSION. The two
custom resources the trio uses have no schema there:

  keda.sh/v1alpha1 ScaledObject          cloudcoil.models.keda (generated
  monitoring.coreos.com/v1 PodMonitor,   from KEDA's and the Prometheus
  ServiceMonitor                         Operator's CRDs) cloudcoil.models.
                                         prometheus_operator

they are validated against the JSON schema of those models, made strict the
same way (additionalProperties: false wherever the model does not allow
more). Any other kind is an error: nothing is passed unchecked.

One line per violation ("FILE: Kind/name: where: what"; for a Kubernetes
kind the first one kubernetes-validate raises), one line per file checked; exit 1 if any, 2 for bad usage or unreadable input.
"""
import argparse
import sys

import jsonschema
import kubernetes_validate
import yaml

# (apiVersion, kind) → the model class that carries its CRD's schema.
CRD_MODELS = {
    ("keda.sh/v1alpha1", "ScaledObject"): ("cloudcoil.models.keda.v1alpha1", "ScaledObject"),
    ("monitoring.coreos.com/v1", "PodMonitor"): ("cloudcoil.models.prometheus_operator.v1", "PodMonitor"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): ("cloudcoil.models.prometheus_operator.v1", "ServiceMonitor"),
}


def strict(schema):
    """Forbids unknown fields in every object schema that lists its fields
    and says nothing about others (pydantic's models ignore extra fields by
    default, which would let a misspelt field through)."""
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for v in schema.values():
            strict(v)
    elif isinstance(schema, list):
        for v in schema:
            strict(v)
    return schema


_validators = {}


def crd_validator(key):
    if key not in _validators:
        import importlib

        module, cls = CRD_MODELS[key]
        model = getattr(importlib.import_module(module), cls)
        schema = strict(model.model_json_schema(by_alias=True, mode="validation"))
        _validators[key] = jsonschema.Draft202012Validator(schema)
    return _validators[key]


def where(err):
    return "/".join(str(p) for p in err.absolute_path) or "(top)"


def validate_doc(doc, version):
    """Returns the list of "where: what" problems of one document."""
    if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
        return ["(top): not a Kubernetes object (no apiVersion or kind)"]
    key = (doc["apiVersion"], doc["kind"])
    if key in CRD_MODELS:
        errs = sorted(crd_validator(key).iter_errors(doc), key=lambda e: list(e.absolute_path))
        return ["%s: %s" % (where(e), e.message) for e in errs]
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return ["(top): no schema for %s %s in kubernetes-validate %s for Kubernetes %s, "
                "nor here" % (key[0], key[1], kubernetes_validate.__version__, version)]
    except kubernetes_validate.ValidationError as e:
        return ["%s: %s" % (where(e), e.message)]
    return []


def main():
    ap = argparse.ArgumentParser(description="validate rendered Kubernetes manifests")
    ap.add_argument("-k", "--kubernetes-version", required=True)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    known = sorted({kubernetes_validate.utils.major_minor(v)
                    for v in kubernetes_validate.utils.all_versions()},
                   key=lambda v: tuple(int(x) for x in v.split(".")))
    if kubernetes_validate.utils.major_minor(args.kubernetes_version.lstrip("v")) not in known:
        print("k8s-validate: Kubernetes %s: kubernetes-validate %s has schemas for %s"
              % (args.kubernetes_version, kubernetes_validate.__version__, ", ".join(known)),
              file=sys.stderr)
        return 2

    bad = 0
    for path in args.files:
        try:
            with open(path) as f:
                docs = [d for d in yaml.safe_load_all(f) if d is not None]
        except (OSError, yaml.YAMLError) as e:
            print("k8s-validate: %s: %s" % (path, str(e).replace("\n", " ")), file=sys.stderr)
            return 2
        if not docs:
            print("%s: no Kubernetes object in it" % path)
            bad += 1
            continue
        n_bad = 0
        for doc in docs:
            name = "%s/%s" % (doc.get("kind", "?"), (doc.get("metadata") or {}).get("name", "?")) \
                if isinstance(doc, dict) else "?"
            for problem in validate_doc(doc, args.kubernetes_version):
                print("%s: %s: %s" % (path, name, problem))
                n_bad += 1
        kinds = sorted({d.get("kind", "?") for d in docs if isinstance(d, dict)})
        print("%s: %d object(s) (%s), %s against Kubernetes %s" % (
            path, len(docs), ", ".join(kinds),
            "%d violation(s)" % n_bad if n_bad else "valid", args.kubernetes_version))
        bad += n_bad
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
