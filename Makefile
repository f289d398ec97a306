# vllmsnap: the two commands a user needs first are `make demo` and `make test`.
# Each installs what it needs (JDK choice, CRIU build, Maven) idempotently and cached.
SHELL := /bin/bash
MVNW := ./mvnw

.PHONY: demo test build criu help

help:
	@echo "make demo   snapshot and restore a stand-in vLLM server with real CRIU, print restore vs cold start"
	@echo "make test   run all tests (needs root for CRIU and namespaces)"
	@echo "make build  build the application without tests"

criu:
	@hack/install-criu.sh

build:
	$(MVNW) -q package -DskipTests

test: criu
	$(MVNW) verify

demo: criu build
	hack/vllmsnap demo
