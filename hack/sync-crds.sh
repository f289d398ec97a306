#!/usr/bin/env bash
# Copies the CRDs the operator build produces (crds/) into the Helm chart and the plain manifests, so that all
# three stay byte-identical (CrdSyncTest checks it). Run through `make sync-crds`.
set -euo pipefail
cd "$(dirname "$0")/.."
for target in helm/vllmsnap/crds deploy/crds; do
  mkdir -p "$target"
  find "$target" -maxdepth 1 -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) -delete
  if [ -d crds ]; then
    find crds -maxdepth 1 -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) -exec cp {} "$target"/ \;
  fi
done
count=$(find crds -maxdepth 1 -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) 2>/dev/null | wc -l)
echo "sync-crds: $count CRD file(s) copied into helm/vllmsnap/crds and deploy/crds"
