#!/usr/bin/env bash
# A throwaway single-node Apache Kafka (KRaft: broker and controller in one JVM) for
# the tests and bench, from the official broker jars on Maven Central, run with
# Debian's OpenJDK. Its own data directory and ports on 127.0.0.1, nothing shared.
#   kafka-local.sh install            fetch the jars once into $EDDY_KAFKA_HOME
#                                     (default ~/.cache/eddy/kafka-$KAFKA_VERSION)
#   kafka-local.sh start DIR PORT     format DIR/data on first use, start, wait until
#                                     the broker answers on 127.0.0.1:PORT (the
#                                     controller listens on PORT+1)
#   kafka-local.sh stop DIR           stop it (SIGTERM, a clean shutdown) and wait
#   kafka-local.sh kill DIR           SIGKILL it
#   kafka-local.sh topic DIR NAME PARTITIONS [key=value...]   create a topic
# Settings a one-node cluster needs: replication factors 1, no initial rebalance
# delay, no automatic topic creation (tests create what they use).
set -eu
KAFKA_VERSION=4.1.1     # the same as docker/compose.yml's apache/kafka image
SCALA=2.13
home=${EDDY_KAFKA_HOME:-${HOME:-/root}/.cache/eddy/kafka-$KAFKA_VERSION}
cmd=${1:?usage: kafka-local.sh install|start|stop|kill|topic [DIR ...]}

jvm=(-Xms64m "-Xmx${KAFKA_HEAP:-512m}" -XX:+UseG1GC -Djava.awt.headless=true
     "-Dlog4j2.configurationFile=$home/log4j2.yaml" -cp "$home/libs/*")
java_run() { java "${jvm[@]}" "$@"; }
# The same as this process: run in the background, its pid is then the JVM's, so that
# stop and kill reach the broker (a function run with & is a subshell of its own;
# killing that would leave java running, holding the port and answering).
java_exec() { exec java "${jvm[@]}" "$@"; }

install() {
  [ -f "$home/libs/.complete" ] && return 0
  local work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  # The broker (core), the tools (TopicCommand) and log4j2 as Kafka's own
  # distribution ships them; Maven resolves the rest.
  cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>eddy</groupId><artifactId>kafka-local</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_$SCALA</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.24.3</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>2.24.3</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>2.0.16</version></dependency>
  </dependencies>
</project>
EOF
  mkdir -p "$home/libs"
  mvn -q -B -f "$work/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$home/libs" >"$work/mvn.log" 2>&1 ||
    { tail -20 "$work/mvn.log" >&2; echo "kafka-local.sh: fetching Kafka $KAFKA_VERSION failed" >&2; return 1; }
  cat >"$home/log4j2.yaml" <<'EOF'
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        Pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.server.KafkaRaftServer
        level: INFO
EOF
  touch "$home/libs/.complete"
}

case $cmd in
install)
  install
  ;;
start)
  dir=${2:?DIR missing}
  port=${3:?PORT missing}
  install
  mkdir -p "$dir"
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$((port + 1))
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.quorum.voters=1@127.0.0.1:$((port + 1))
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
log.flush.interval.messages=9223372036854775807
EOF
  if [ ! -f "$dir/data/meta.properties" ]; then
    java_run kafka.tools.StorageTool format -t "$(java_run kafka.tools.StorageTool random-uuid)" \
      -c "$dir/server.properties" >"$dir/format.log" 2>&1 ||
      { cat "$dir/format.log" >&2; exit 1; }
  fi
  java_exec kafka.Kafka "$dir/server.properties" >>"$dir/server.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/pid"
  echo "$port" >"$dir/port"
  # Up when the broker answers a metadata request (kcat, as a user would check).
  for _ in $(seq 600); do
    kcat -b "127.0.0.1:$port" -L -m 2 >/dev/null 2>&1 && exit 0
    kill -0 "$pid" 2>/dev/null ||
      { echo "kafka did not start:" >&2; tail -n 20 "$dir/server.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "kafka did not answer on 127.0.0.1:$port within 60 s" >&2
  exit 1
  ;;
stop | kill)
  dir=${2:?DIR missing}
  [ -f "$dir/pid" ] || exit 0
  pid=$(cat "$dir/pid")
  kill "-$([ "$cmd" = kill ] && echo KILL || echo TERM)" "$pid" 2>/dev/null || true
  for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/pid"
  ;;
topic)
  dir=${2:?DIR missing}
  name=${3:?NAME missing}
  parts=${4:?PARTITIONS missing}
  shift 4
  args=()
  for c in "$@"; do args+=(--config "$c"); done
  java_run org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$(cat "$dir/port")" \
    --create --topic "$name" --partitions "$parts" --replication-factor 1 "${args[@]}" >/dev/null
  ;;
*)
  echo "kafka-local.sh: unknown command $cmd" >&2
  exit 2
  ;;
esac
