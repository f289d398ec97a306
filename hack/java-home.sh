#!/usr/bin/env bash
# Prints the JAVA_HOME of a JDK >= 25 (the project uses FFM and targets Java 25).
# Prefers an already exported JAVA_HOME, then Temurin under /usr/lib/jvm.
set -euo pipefail
major() { "$1/bin/java" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/{print $2}'; }
for candidate in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-* /usr/lib/jvm/temurin-2[5-9]-* /usr/lib/jvm/*; do
  [ -n "$candidate" ] && [ -x "$candidate/bin/javac" ] || continue
  v=$(major "$candidate" || echo 0)
  if [ "${v%%.*}" -ge 25 ] 2>/dev/null; then echo "$candidate"; exit 0; fi
done
echo "no JDK >= 25 found under /usr/lib/jvm; install Temurin 25 (apt package temurin-25-jdk)" >&2
exit 1
