#!/usr/bin/env bash
# Starts the apache/kafka image with SASL (TR04). The JAAS file the broker needs holds the
# admin's password, so it is written here, inside the broker's own container (never in the image
# or in a mount shared with the services), from CASEWORK_KAFKA_ADMIN_PASSWORD; then the image's
# own entry point runs. Listeners (docker-compose.yml):
#   CLIENT     :9092  SASL SCRAM-SHA-512, services and the edge (users created by acls.sh)
#   BROKER     :9094  SASL PLAIN, inter-broker traffic and the admin (acls.sh, the healthcheck)
#   CONTROLLER :9093  SASL PLAIN, KRaft controller
# Only `admin` is a PLAIN user, and only `admin` is a super user: no listener lets an
# unauthenticated (ANONYMOUS) client in.
set -euo pipefail
: "${CASEWORK_KAFKA_ADMIN_PASSWORD:?CASEWORK_KAFKA_ADMIN_PASSWORD is not set}"

umask 077
dir=/tmp/casework-kafka
mkdir -p "$dir"
cat >"$dir/kafka_server_jaas.conf" <<EOF
KafkaServer {
  org.apache.kafka.common.security.plain.PlainLoginModule required
    username="admin"
    password="${CASEWORK_KAFKA_ADMIN_PASSWORD}"
    user_admin="${CASEWORK_KAFKA_ADMIN_PASSWORD}";
  org.apache.kafka.common.security.scram.ScramLoginModule required;
};
EOF
# For the healthcheck (kafka-broker-api-versions.sh --command-config).
cat >"$dir/admin.properties" <<EOF
security.protocol=SASL_PLAINTEXT
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="${CASEWORK_KAFKA_ADMIN_PASSWORD}";
EOF
unset CASEWORK_KAFKA_ADMIN_PASSWORD
export KAFKA_OPTS="${KAFKA_OPTS:-} -Djava.security.auth.login.config=$dir/kafka_server_jaas.conf"
exec /etc/kafka/docker/run
