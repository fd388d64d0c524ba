#!/usr/bin/env bash
# Fetches the pinned jars of stack/pom.xml from Maven Central into .stack/:
#   .stack/kafka/libs/                           broker, tools, Connect worker, logging
#   .stack/plugins/debezium-connector-jdbc/      Debezium JDBC sink + MariaDB driver
#   .stack/plugins/debezium-connector-mariadb/   Debezium MariaDB source (binlog reader) + MariaDB driver
#   .stack/zipkin/                               the Zipkin server (its one executable jar)
set -euo pipefail
cd "$(dirname "$0")/.."

# Shared by every stack (the demo's and the tests' private ones), whatever STACK_DIR says.
STACK=.stack
LIBS="$STACK/kafka/libs"
PLUGIN="$STACK/plugins/debezium-connector-jdbc"
SOURCE="$STACK/plugins/debezium-connector-mariadb"
MVN=(mvn -B -q -f stack/pom.xml -s stack/maven-settings.xml)

copy() {  # copy(profile, dir, extra args...): the profile's runtime jars, transitively
    local profile=$1 dir=$2; shift 2
    echo "fetching the $profile jars into $dir ..."
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    # Maven 3.8 prints colour codes even when quiet: keep its output for failures only.
    if ! "${MVN[@]}" -P "$profile" dependency:copy-dependencies \
            -DincludeScope=runtime -DoutputDirectory="$PWD/$dir.tmp" "$@" >"$STACK/mvn.log" 2>&1; then
        cat "$STACK/mvn.log" >&2
        echo "fetch_jars: Maven could not resolve profile $profile (see above)" >&2
        exit 1
    fi
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
    echo "fetched $(ls "$dir" | wc -l) jars into $dir"
}

copy runtime "$LIBS"
# The worker provides the Kafka/Connect API, slf4j and Jackson (same 2.19 version) to
# every plugin: keep them out, or Debezium's converters see two JsonNode classes.
# Also leave out the drivers of databases we do not use (less for the worker to scan).
copy plugin "$PLUGIN" -DexcludeGroupIds=org.apache.kafka,org.slf4j,org.apache.logging.log4j \
    -DexcludeArtifactIds=jackson-core,jackson-databind,jackson-annotations,mssql-jdbc,ojdbc11,postgresql,mysql-connector-j
# The source connector in a plugin dir of its own, with the same exclusions: its
# debezium-connect-plugins pulls connect-api, kafka-clients, slf4j and Jackson, which the worker
# provides. Its own dir because it needs ANTLR 4.10.1 (its DDL parser was generated with it) where
# the sink's Hibernate brings 4.13.2: one dir holding both would load one of them for the other.
copy source "$SOURCE" -DexcludeGroupIds=org.apache.kafka,org.slf4j,org.apache.logging.log4j \
    -DexcludeArtifactIds=jackson-core,jackson-databind,jackson-annotations
# Zipkin, the traces' server (the course's): its executable jar alone, run with the machine's Java 17.
ZIPKIN="$STACK/zipkin"
ZIPKIN_VERSION=3.5.1
echo "fetching zipkin-server $ZIPKIN_VERSION into $ZIPKIN ..."
rm -rf "$ZIPKIN.tmp" && mkdir -p "$ZIPKIN.tmp"
if ! "${MVN[@]}" dependency:copy -Dartifact="io.zipkin:zipkin-server:$ZIPKIN_VERSION:jar:exec" \
        -DoutputDirectory="$PWD/$ZIPKIN.tmp" >"$STACK/mvn.log" 2>&1; then
    cat "$STACK/mvn.log" >&2
    echo "fetch_jars: Maven could not fetch io.zipkin:zipkin-server:$ZIPKIN_VERSION:exec (see above)" >&2
    exit 1
fi
rm -rf "$ZIPKIN" && mv "$ZIPKIN.tmp" "$ZIPKIN"
echo "fetched $(ls "$ZIPKIN")"
