#!/usr/bin/env bash
# Agent job submission with many job records on the node (issue 16: 20,000 records cost 0.44 s per submit under one
# lock). Fills a temporary job store with $RECORDS terminal records (half older than the retention), starts the real
# JobRunner on it and times $SUBMITS snapshot submissions; writes bench/results/jobstore-submit-<UTC date>.json.
# No root needed. Usage: bench/cpu/jobstore-submit.sh   (env: RECORDS=20000, SUBMITS=50, LABEL=free text)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out="bench/results/jobstore-submit-$stamp.json"
./mvnw -q -o test -Dtest=JobStoreBenchmark -Dsurefire.failIfNoSpecifiedTests=false -Dvllmsnap.bench.jobstore=true \
  -Dvllmsnap.bench.records="${RECORDS:-20000}" -Dvllmsnap.bench.submits="${SUBMITS:-50}" -Dvllmsnap.bench.out="$repo/$out"
python3 - "$out" "${LABEL:-}" "$(git rev-parse --short HEAD)" <<'PY'
import json, sys
p, label, commit = sys.argv[1:4]
d = json.load(open(p)); d["label"] = label; d["commit"] = commit
json.dump(d, open(p, "w"), indent=2)
print(f"{d['records']} records: submit median {d['submitMedianSeconds']*1000:.2f} ms, p90 {d['submitP90Seconds']*1000:.2f} ms, "
      f"recover {d['recoverSeconds']:.2f} s, {d['recordFilesLeft']} record files left")
PY
