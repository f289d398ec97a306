#!/usr/bin/env bash
# Builds what travels to a bare GPU machine (no Java, no network) for the GPU benchmark and the FFM proof:
#   jre/      a jlink'd, compressed Java runtime with only the modules the GPU tools need
#   lib/      vllmsnap's local CLI, engine, CRIU driver and cuda classes as one jar, plus picocli and Jackson
#   bin/      launchers: vllmsnap (the local CLI), cuda-probe (io.vllmsnap.cuda.CudaCheckpointProbe) and
#             cuda-checkpoint (io.vllmsnap.cuda.CudaCheckpointCli: the command line CRIU's CUDA plugin runs)
#   lib/vllmsnap.aot.gz  the CLI's AOT cache (JEP 483), made by a training run here (root and CRIU needed)
#   criu/     the project's CRIU build and the shared libraries it links (when a CRIU is installed here), and
#             criu/plugins/cuda_plugin.so, CRIU's CUDA plugin (hack/install-criu.sh builds it; CUDA_PLUGIN names another)
#   src/main/python/  the stand-in servers (CPU and GPU flavours), where the engine looks for them
#   *.sh      the scripts run on the GPU machine; plans/ the benchmark's plan files (plan.py)
# Usage: bench/gpu/build-bundle.sh [OUT_DIR]   (default target/gpu-bundle). Fails when the bundle exceeds
# MAX_MIB (default 60). Inputs can be given instead of built: CLASSES_DIR (compiled classes) and DEPS (jars,
# ':'-separated); otherwise the project is compiled with ./mvnw and the jars come from its classpath.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${1:-$ROOT/target/gpu-bundle}"
MAX_MIB="${MAX_MIB:-60}"
JAVA_HOME="${JAVA_HOME:-$("$ROOT/hack/java-home.sh")}"
export JAVA_HOME
log() { echo "build-bundle: $*" >&2; }

if [ -z "${CLASSES_DIR:-}" ] || [ -z "${DEPS:-}" ]; then
  log "compiling with ./mvnw"
  (cd "$ROOT" && ./mvnw -q compile)
  cpfile="$(mktemp)"
  (cd "$ROOT" && ./mvnw -q dependency:build-classpath -Dmdep.outputFile="$cpfile" >/dev/null)
  CLASSES_DIR="$ROOT/target/classes"
  DEPS="$(tr ':' '\n' <"$cpfile" | grep -E '/(picocli|jackson-core|jackson-databind|jackson-annotations)-[0-9][^/]*\.jar$' | paste -sd:)"
  rm -f "$cpfile"
fi
[ -d "$CLASSES_DIR/io/vllmsnap/cuda" ] || { log "no compiled io.vllmsnap.cuda classes in $CLASSES_DIR"; exit 1; }
[ -n "$DEPS" ] || { log "no picocli/Jackson jars found"; exit 1; }

rm -rf "$OUT"
PY="$OUT/src/main/python/vllmsnap_standin"
mkdir -p "$OUT/lib" "$OUT/bin" "$PY"

# Application jar: the packages the local CLI and the GPU tools use (they need only picocli and Jackson; the
# operator and the agent, which need Quarkus, stay home).
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
for pkg in io/vllmsnap/cuda io/vllmsnap/engine io/vllmsnap/criu io/vllmsnap/cli; do
  [ -d "$CLASSES_DIR/$pkg" ] || continue
  mkdir -p "$stage/$pkg"
  cp "$CLASSES_DIR/$pkg"/*.class "$stage/$pkg/"
done
"$JAVA_HOME/bin/jar" --create --file "$OUT/lib/vllmsnap-gpu.jar" -C "$stage" .
IFS=: read -r -a jars <<<"$DEPS"
for j in "${jars[@]}"; do cp "$j" "$OUT/lib/"; done

# Runtime: java.base is enough. jdeps also lists java.sql and java.desktop for Jackson, which only probes them
# and copes without; leaving them out keeps the runtime small (checked below by running the probe).
"$JAVA_HOME/bin/jlink" --add-modules java.base --compress zip-9 --strip-debug --no-header-files \
  --no-man-pages --output "$OUT/jre"
# Temurin's libjvm.so keeps its symbol table (~5 MiB): the dynamic symbols are all the runtime needs.
if command -v strip >/dev/null; then strip --strip-unneeded "$OUT/jre/lib/server/libjvm.so"; fi

cat >"$OUT/bin/cuda-probe" <<'LAUNCH'
#!/bin/sh
# Runs vllmsnap's GPU checkpoint probe with the bundled runtime. JAVA_OPTS adds JVM options.
here="$(cd "$(dirname "$0")/.." && pwd)"
exec "$here/jre/bin/java" --enable-native-access=ALL-UNNAMED -XX:+UseSerialGC -XX:TieredStopAtLevel=1 $JAVA_OPTS \
  -cp "$here/lib/*" io.vllmsnap.cuda.CudaCheckpointProbe "$@"
LAUNCH
chmod +x "$OUT/bin/cuda-probe"
cat >"$OUT/bin/cuda-checkpoint" <<'LAUNCH'
#!/bin/sh
# vllmsnap's stand-in for NVIDIA's cuda-checkpoint, for CRIU's CUDA plugin (which finds it on PATH). The plugin reads
# stdout and stderr together and parses them, so the JVM must print nothing of its own: the variables that make it
# announce themselves ("Picked up ...") are cleared. JAVA_OPTS adds JVM options.
here="$(cd "$(dirname "$0")/.." && pwd)"
unset JAVA_TOOL_OPTIONS _JAVA_OPTIONS JDK_JAVA_OPTIONS
exec "$here/jre/bin/java" --enable-native-access=ALL-UNNAMED -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
  -XX:-UsePerfData $JAVA_OPTS -cp "$here/lib/*" io.vllmsnap.cuda.CudaCheckpointCli "$@"
LAUNCH
chmod +x "$OUT/bin/cuda-checkpoint"
cat >"$OUT/bin/vllmsnap" <<'LAUNCH'
#!/bin/sh
# The local vllmsnap CLI with the bundled runtime, CRIU and stand-in servers. JAVA_OPTS adds JVM options.
here="$(cd "$(dirname "$0")/.." && pwd)"
export VLLMSNAP_HOME="${VLLMSNAP_HOME:-$here}"
[ -x "$here/criu/criu.sh" ] && export VLLMSNAP_CRIU="${VLLMSNAP_CRIU:-$here/criu/criu.sh}"
# Start-up: an AOT cache (JEP 483) of the classes a snapshot and a restore load, made at build time by a training
# run and shipped gzipped, is unpacked beside itself on first use. A JVM uses it only with the class path, GC and
# heap mode it was made with, so these are fixed: the class path in a set order (a wildcard expands in directory
# order), serial GC, and a heap small enough for compressed pointers (the default, a quarter of a GPU host's
# memory, can turn them off).
aot="$here/lib/vllmsnap.aot"
if [ ! -f "$aot" ] && [ -f "$aot.gz" ]; then
  { gzip -dc "$aot.gz" >"$aot.$$" && mv -f "$aot.$$" "$aot"; } 2>/dev/null || rm -f "$aot.$$"
fi
aot_opt=
[ -f "$aot" ] && aot_opt="-XX:AOTCache=$aot"
exec "$here/jre/bin/java" --enable-native-access=ALL-UNNAMED -XX:+UseSerialGC -Xmx2g $aot_opt $JAVA_OPTS \
  -cp "@CLASS_PATH@" io.vllmsnap.cli.VllmsnapCli "$@"
LAUNCH
class_path="$(cd "$OUT/lib" && { echo vllmsnap-gpu.jar; ls ./*.jar | sed 's|^\./||' | grep -v '^vllmsnap' | sort; } \
  | sed 's|^|$here/lib/|' | paste -sd:)"
sed -i "s|@CLASS_PATH@|$class_path|" "$OUT/bin/vllmsnap"
chmod +x "$OUT/bin/vllmsnap"

# CRIU and its shared libraries (glibc's own stay: the GPU machine has its own).
criu_bin="${CRIU_BIN:-$(command -v criu || true)}"
if [ -n "$criu_bin" ] && [ -x "$criu_bin" ]; then
  mkdir -p "$OUT/criu/lib"
  cp "$criu_bin" "$OUT/criu/criu"
  if command -v strip >/dev/null; then strip --strip-unneeded "$OUT/criu/criu"; fi
  ldd "$criu_bin" | awk '/=> \//{print $3}' | while read -r lib; do
    case "$(basename "$lib")" in
      libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*) ;;
      *) cp -L "$lib" "$OUT/criu/lib/" ;;
    esac
  done
  printf '#!/bin/sh\nhere="$(cd "$(dirname "$0")" && pwd)"\nLD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$here/criu" "$@"\n' \
    >"$OUT/criu/criu.sh"
  chmod +x "$OUT/criu/criu.sh"
  plugin="${CUDA_PLUGIN:-${VLLMSNAP_CACHE:-${HOME:-/root}/.cache/vllmsnap}/criu/plugins/cuda_plugin.so}"
  if [ -f "$plugin" ]; then
    install -D -m 0644 "$plugin" "$OUT/criu/plugins/cuda_plugin.so"
    if command -v strip >/dev/null; then strip --strip-unneeded "$OUT/criu/plugins/cuda_plugin.so"; fi
  else
    log "no CRIU CUDA plugin at $plugin: bundle has no criu/plugins (the criu-plugin scenario cannot run)"
  fi
else
  log "no CRIU installed here (hack/install-criu.sh): bundle has no criu/"
fi

cp "$ROOT"/src/main/python/vllmsnap_standin/*.py "$PY/"
cp "$ROOT"/bench/gpu/*.py "$ROOT"/bench/gpu/*.sh "$OUT/" 2>/dev/null || true
cp -r "$ROOT"/bench/gpu/plans "$OUT/plans"
rm -f "$OUT/build-bundle.sh"

# Smoke check: the runtime starts the probe and its JSON comes out.
"$OUT/bin/cuda-probe" cuda-pids --root $$ | grep -q '"tree"' || { log "bundled runtime cannot run the probe"; exit 1; }
# ... and the cuda-checkpoint stand-in answers the plugin's first question (does it know --action?).
"$OUT/bin/cuda-checkpoint" -h | grep -q -- '--action' || { log "bundled cuda-checkpoint does not run"; exit 1; }
if [ -d "$CLASSES_DIR/io/vllmsnap/cli" ]; then
  "$OUT/bin/vllmsnap" --help >/dev/null || { log "bundled runtime cannot run the vllmsnap CLI"; exit 1; }
fi

# AOT cache for the CLI: a training run of the demo (a small stand-in snapshotted and restored; needs root and CRIU)
# records what a snapshot and a restore load. Raw it is ~25 MiB, more than the size limit leaves, so it goes in
# gzipped (~6 MiB). Checked by a start that must use it (-XX:AOTMode=on fails otherwise). Without root or CRIU, or
# with NO_AOT=1, the bundle goes without one and the launcher starts as before, only slower.
if [ -d "$CLASSES_DIR/io/vllmsnap/cli" ] && [ -x "$OUT/criu/criu.sh" ] && [ "$(id -u)" = 0 ] && [ -z "${NO_AOT:-}" ]; then
  train="$(mktemp -d /var/tmp/vllmsnap-aot-train.XXXXXX)"
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  if JAVA_OPTS="-XX:AOTCacheOutput=$OUT/lib/vllmsnap.aot" "$OUT/bin/vllmsnap" demo --dir "$train" --weights-mib 16 \
      --kv-mib 8 --compile-rounds 1 --port "$port" >"$train/log" 2>&1 \
      && gzip -9 "$OUT/lib/vllmsnap.aot" \
      && JAVA_OPTS="-XX:AOTMode=on" "$OUT/bin/vllmsnap" --version >/dev/null; then
    log "AOT cache lib/vllmsnap.aot.gz: $(du -k "$OUT/lib/vllmsnap.aot.gz" | cut -f1) KiB"
  else
    log "AOT training failed, bundle without AOT cache:"; tail -n 5 "$train/log" >&2
    rm -f "$OUT/lib/vllmsnap.aot.gz"
  fi
  rm -f "$OUT/lib/vllmsnap.aot"  # unpacked by the check; the launcher unpacks it again where the bundle lands
  rm -rf "$train"
fi

kib="$(du -sk "$OUT" | cut -f1)"
log "bundle at $OUT: $((kib / 1024)) MiB (limit $MAX_MIB MiB)"
if [ "$kib" -gt $((MAX_MIB * 1024)) ]; then
  log "bundle is larger than $MAX_MIB MiB"
  exit 3
fi
echo "$OUT"
