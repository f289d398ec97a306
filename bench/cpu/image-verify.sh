#!/usr/bin/env bash
# Image verification and pull throughput on this machine (issue 18): SHA-256 of one file, full verification of a
# snapshot-shaped image (one big pages file, eight smaller, 80 small CRIU files) with 1 and 2 readers, the stamped
# verification a restore pays once a node verified its copy, and pulls into an empty node cache from a shared
# directory and from a real registry (docker-registry, plain HTTP on loopback). Files are in the page cache.
# Writes bench/results/cpu-image-verify-<UTC date>.json. Usage: bench/cpu/image-verify.sh [IMAGE_MIB=2048]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
hack/install-registry.sh
export JAVA_HOME="$(hack/java-home.sh)"
./mvnw -q -o test-compile 2>/dev/null || ./mvnw -q test-compile
cp_file=target/image-bench.classpath
./mvnw -q -o dependency:build-classpath -Dmdep.outputFile="$cp_file" -Dmdep.includeScope=test >/dev/null
stamp=$(date -u +%Y%m%dT%H%M%SZ)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out="bench/results/cpu-image-verify-$stamp.json"
# the logging the agent runs with (JBoss LogManager behind java.util.logging), as in the tests
"$JAVA_HOME/bin/java" -Djava.util.logging.manager=org.jboss.logmanager.LogManager -cp "target/test-classes:target/classes:$(cat "$cp_file")" io.vllmsnap.image.ImageBench \
  "$out" "$work" "${1:-${IMAGE_MIB:-2048}}"
echo "written $out"
