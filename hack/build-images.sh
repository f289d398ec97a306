#!/usr/bin/env bash
# Builds the operator and agent images (src/main/docker). Needs a container engine: docker with a running daemon,
# or podman. Usage: hack/build-images.sh REPOSITORY_PREFIX TAG   (make images IMAGE_REPOSITORY=... IMAGE_TAG=...)
set -euo pipefail
cd "$(dirname "$0")/.."
prefix="${1:-vllmsnap}"
tag="${2:-dev}"

engine=""
if command -v podman >/dev/null 2>&1 && timeout 20 podman info >/dev/null 2>&1; then
  engine=podman
elif command -v docker >/dev/null 2>&1; then
  if timeout 20 docker info >/dev/null 2>&1; then
    engine=docker
  else
    echo "images: the docker client is installed but no container engine answers (docker info failed)." >&2
    echo "images: start a Docker daemon (or install podman) and run make images again; nothing was built." >&2
    exit 2
  fi
fi
if [ -z "$engine" ]; then
  echo "images: no container engine found (docker or podman); nothing was built." >&2
  exit 2
fi

# The application is built once on the host and copied into both images (Quarkus fast-jar layout).
./mvnw -q package -DskipTests
for component in operator agent; do
  echo "images: building $prefix/$component:$tag with $engine"
  timeout 3600 "$engine" build -f "src/main/docker/Dockerfile.$component" -t "$prefix/$component:$tag" .
done
echo "images: built $prefix/operator:$tag and $prefix/agent:$tag"
