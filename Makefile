# vllmsnap: the two commands a user needs first are `make demo` and `make test`.
# Each installs what it needs (JDK choice, CRIU build, Maven) idempotently and cached.
SHELL := /bin/bash
MVNW := ./mvnw

.PHONY: demo test build criu registry help images sync-crds deploy-manifests dashboard-sample

help:
	@echo "make demo   snapshot and restore a stand-in vLLM server with real CRIU, print restore vs cold start"
	@echo "make test   run all tests (needs root for CRIU and namespaces)"
	@echo "make build  build the application without tests"
	@echo "make images            build the operator and agent container images (needs docker or podman with an engine)"
	@echo "make sync-crds         copy crds/ into helm/vllmsnap/crds and deploy/crds"
	@echo "make deploy-manifests  re-render deploy/vllmsnap.yaml from the Helm chart (after sync-crds)"
	@echo "make dashboard-sample  draw docs/img/dashboard-sample.png from real restores (root, CRIU, python3-matplotlib)"

criu:
	@hack/install-criu.sh

# the OCI store's tests run a real registry (Debian's docker-registry) on loopback
registry:
	@hack/install-registry.sh

build:
	$(MVNW) -q package -DskipTests

test: criu registry
	$(MVNW) verify

demo: criu build
	hack/vllmsnap demo

# --- Helm chart, plain manifests and container images (docs/install.md) ---
IMAGE_REPOSITORY ?= vllmsnap
IMAGE_TAG ?= $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}/\1/p' helm/vllmsnap/Chart.yaml)

sync-crds:
	@hack/sync-crds.sh

deploy-manifests: sync-crds
	$(MVNW) -q test -Dtest=DeployManifestsTest -Dvllmsnap.regenerate=true -Dsurefire.failIfNoSpecifiedTests=false

# The dashboard picture in docs/img: real CRIU restores of the stand-in server (root), then the dashboard's queries
# evaluated on the scrape (python3-matplotlib from Debian).
dashboard-sample: criu
	$(MVNW) -q test -Dtest=DashboardSample -Dvllmsnap.dashboardSample=true -Dsurefire.failIfNoSpecifiedTests=false
	/usr/bin/python3 hack/render-dashboard-sample.py target/dashboard-sample docs/img/dashboard-sample.png

images:
	@hack/build-images.sh "$(IMAGE_REPOSITORY)" "$(IMAGE_TAG)"
