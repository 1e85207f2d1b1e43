# k8s.mk — the Kubernetes manifests' checks (make test-k8s, part of make test):
# deploy/k8s/ rendered with kustomize, validated against the Kubernetes and
# CRD schemas, and held to the policy of scripts/k8s-policy.py, which is
# itself shown to catch each rule broken. No cluster, no port.

TEST_TARGETS += test-k8s

.PHONY: test-k8s

# (all: the policy asks each binary's --help which variables it reads)
test-k8s: deps-test all
	@echo "== Kubernetes manifests: kustomize build, schemas, policy (no cluster)"
	$(Q)scripts/k8s-check.sh $(BUILD)
