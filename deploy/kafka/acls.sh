#!/usr/bin/env bash
# TR04 on Apache Kafka: topics, one SCRAM-SHA-512 user per principal, and the ACLs of
# deploy/kafka/acls.json (tests/security/test_acl_config.py checks that the `topic`, `user` and
# `acl` lines below match that table, which it checks against the services' CONSUMES lists).
#
# Run once, by a one-shot job, with the Kafka CLI tools (the apache/kafka image) and the admin's
# credentials. It talks to the broker's admin listener (SASL PLAIN, the super user `admin`);
# services and the edge use the client listener (SASL SCRAM-SHA-512) with these users.
#
# Environment:
#   KAFKA_ADMIN_BOOTSTRAP   the admin listener, e.g. kafka:9094
#   KAFKA_ADMIN_PASSWORD    the admin's password (the broker's JAAS entry user_admin)
#   KAFKA_PASSWORD_<NAME>   one per principal: ALLOCATION, SIGNOFF, ACCESS, NOTIFICATIONS, EDGE
#   KAFKA_BIN               default /opt/kafka/bin;  PARTITIONS  default 6 (acls.json, the
#                           services' maximum replicas in deploy/k8s/base/scaling.yaml)
# Retention as deploy/k8s/base/kafka-topics.yaml: commands 7 days, events 14, dead letters 30.
#
# Idempotent: topics are created if missing, SCRAM users are upserted, ACLs are added. An ACL
# removed from the table must also be removed from the cluster by hand (kafka-acls.sh --remove).
# Never prints a password (no `set -x`).
set -euo pipefail

BIN=${KAFKA_BIN:-/opt/kafka/bin}
BOOTSTRAP=${KAFKA_ADMIN_BOOTSTRAP:?KAFKA_ADMIN_BOOTSTRAP is not set}
: "${KAFKA_ADMIN_PASSWORD:?KAFKA_ADMIN_PASSWORD is not set}"
PARTITIONS=${PARTITIONS:-6}

umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/admin.properties" <<EOF
security.protocol=SASL_PLAINTEXT
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="${KAFKA_ADMIN_PASSWORD}";
EOF
admin=(--bootstrap-server "$BOOTSTRAP" --command-config "$work/admin.properties")

# Wait for the broker (bounded: 60 tries, 2 s apart).
for attempt in $(seq 1 60); do
  if "$BIN/kafka-broker-api-versions.sh" "${admin[@]}" >/dev/null 2>&1; then
    break
  fi
  if [ "$attempt" = 60 ]; then
    echo "acls.sh: broker $BOOTSTRAP not reachable as admin" >&2
    exit 1
  fi
  sleep 2
done

topic() {
  local days=14
  case $1 in
    *.dlq) days=30 ;;
    *.commands) days=7 ;;
  esac
  "$BIN/kafka-topics.sh" "${admin[@]}" --create --if-not-exists --topic "$1" \
    --partitions "$PARTITIONS" --replication-factor 1 \
    --config "retention.ms=$((days * 86400000))" --config cleanup.policy=delete >/dev/null
  echo "topic $1 (retention $days days)"
}

user() {
  local name=$1 var
  var="KAFKA_PASSWORD_${name^^}"
  local password=${!var:?$var is not set}
  "$BIN/kafka-configs.sh" "${admin[@]}" --alter --entity-type users --entity-name "$name" \
    --add-config "SCRAM-SHA-512=[iterations=8192,password=${password}]" >/dev/null
  echo "user $name (SCRAM-SHA-512)"
}

acl() {
  local principal=$1 operation=$2 kind=$3 name=$4
  "$BIN/kafka-acls.sh" "${admin[@]}" --add --allow-principal "User:$principal" \
    --operation "$operation" "--$kind" "$name" --resource-pattern-type literal >/dev/null
  echo "allow User:$principal $operation $kind $name"
}

# A service's consumer-group marker topic (acls.json "marker"; services/shared/topic_watch.py):
# the service creates it (one partition) and looks for it, to tell a broker that lost its state
# from one that kept it. Nobody reads or writes it, so only Create and Describe.
marker() {
  local topic="_casework-marker.$1"
  acl "$1" Create topic "$topic"
  acl "$1" Describe topic "$topic"
}

# --- topics (contracts.Topics.all()) ---
topic allocation.commands
topic allocation.events
topic signoff.commands
topic signoff.events
topic access.commands
topic access.events
topic notifications.commands
topic notifications.events
topic allocation.commands.dlq
topic allocation.events.dlq
topic signoff.commands.dlq
topic signoff.events.dlq
topic access.commands.dlq
topic access.events.dlq
topic notifications.commands.dlq
topic notifications.events.dlq

# --- SCRAM users ---
user allocation
user signoff
user access
user notifications
user edge

# --- allocation: consumes allocation.commands, access.events, signoff.events ---
acl allocation Write topic allocation.events
acl allocation Write topic allocation.commands.dlq
acl allocation Write topic access.events.dlq
acl allocation Write topic signoff.events.dlq
acl allocation Read topic allocation.commands
acl allocation Read topic access.events
acl allocation Read topic signoff.events
acl allocation Read group allocation
marker allocation

# --- signoff: consumes signoff.commands, allocation.events, access.events ---
acl signoff Write topic signoff.events
acl signoff Write topic signoff.commands.dlq
acl signoff Write topic allocation.events.dlq
acl signoff Write topic access.events.dlq
acl signoff Read topic signoff.commands
acl signoff Read topic allocation.events
acl signoff Read topic access.events
acl signoff Read group signoff
marker signoff

# --- access: consumes access.commands, allocation.events ---
acl access Write topic access.events
acl access Write topic access.commands.dlq
acl access Write topic allocation.events.dlq
acl access Read topic access.commands
acl access Read topic allocation.events
acl access Read group access
marker access

# --- notifications: consumes allocation.events, signoff.events, access.events,
#     notifications.commands ---
acl notifications Write topic notifications.events
acl notifications Write topic allocation.events.dlq
acl notifications Write topic signoff.events.dlq
acl notifications Write topic access.events.dlq
acl notifications Write topic notifications.commands.dlq
acl notifications Read topic allocation.events
acl notifications Read topic signoff.events
acl notifications Read topic access.events
acl notifications Read topic notifications.commands
acl notifications Read group notifications
marker notifications

# --- edge: writes commands; reads outcomes (event topics, command dead letters), no group ---
acl edge Write topic allocation.commands
acl edge Write topic signoff.commands
acl edge Write topic access.commands
acl edge Write topic notifications.commands
acl edge Read topic allocation.events
acl edge Read topic signoff.events
acl edge Read topic access.events
acl edge Read topic notifications.events
acl edge Read topic allocation.commands.dlq
acl edge Read topic signoff.commands.dlq
acl edge Read topic access.commands.dlq
acl edge Read topic notifications.commands.dlq

echo "acls.sh: done"
