#!/usr/bin/env bash
# Fetch a real Elasticsearch (the integ-test-zip build) from Maven Central and unpack it
# under $RAY_ICMA_HOME for a non-root user. ES 9.x needs Java >= 21: we use a Temurin JDK when
# the machine has one, else fall back to ES 8.19.0, which runs on Java 17.
set -euo pipefail
HOME_DIR="${RAY_ICMA_HOME:-$HOME/.cache/ray-icma}"
ES_VERSION="${RAY_ICMA_ES_VERSION:-9.2.4}"
ES_USER="${RAY_ICMA_ES_USER:-raysearch}"
log() { printf '\033[1;34m[es-install]\033[0m %s\n' "$*"; }

java_home=""
for d in /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/temurin-2*-jdk-* /usr/lib/jvm/java-2*-openjdk-*; do
  [ -x "$d/bin/java" ] && { java_home="$d"; break; }
done
if [ -z "$java_home" ]; then
  log "no JDK >= 21 found; using Elasticsearch 8.19.0 on Java 17"
  ES_VERSION=8.19.0
  for d in /usr/lib/jvm/java-17-openjdk-*; do [ -x "$d/bin/java" ] && java_home="$d"; done
  if [ -z "$java_home" ]; then
    apt-get install -y -qq openjdk-17-jdk-headless >/dev/null
    for d in /usr/lib/jvm/java-17-openjdk-*; do [ -x "$d/bin/java" ] && java_home="$d"; done
  fi
fi
ES_DIR="$HOME_DIR/elasticsearch-$ES_VERSION"
if [ ! -x "$ES_DIR/bin/elasticsearch" ]; then
  zip="$HOME/.m2/repository/org/elasticsearch/distribution/integ-test-zip/elasticsearch/$ES_VERSION/elasticsearch-$ES_VERSION.zip"
  if [ ! -f "$zip" ]; then
    log "mvn dependency:get elasticsearch $ES_VERSION"
    mvn -B -q dependency:get -Dtransitive=false \
      -Dartifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip"
  fi
  tmp=$(mktemp -d)
  unzip -q "$zip" -d "$tmp"
  mv "$tmp/elasticsearch-$ES_VERSION" "$ES_DIR"
  rmdir "$tmp"
fi
id "$ES_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$ES_USER"
chown -R "$ES_USER" "$ES_DIR"
chmod o+x "$HOME" "$HOME/.cache" "$HOME_DIR" 2>/dev/null || true
cat > "$HOME_DIR/elasticsearch.env" <<ENV
ES_DIR=$ES_DIR
ES_JAVA_HOME=$java_home
ES_USER=$ES_USER
ES_VERSION=$ES_VERSION
ENV
log "Elasticsearch $ES_VERSION at $ES_DIR (java: $java_home)"
