#!/bin/sh
# Writes the compose stack's secrets into this directory: a random password
# per NATS user and ClickHouse user, the hashes the servers keep, and the DSNs
# the programs read. Needs openssl, sha256sum and htpasswd (Debian:
# apache2-utils). Existing files are kept: delete one to make it anew.
set -eu
cd "$(dirname "$0")"
umask 077

password() { [ -s "$1" ] || openssl rand -hex 24 > "$1"; }
bcrypt() { htpasswd -bnBC 11 "" "$(cat "$1")" | tr -d ':\n'; }
sha256() { printf %s "$(cat "$1")" | sha256sum | cut -d' ' -f1; }

for user in admin counter aggregator alerter alerts; do password "nats-$user-password"; done
if [ ! -s nats-password-hashes.conf ]; then
	for user in admin counter aggregator alerter alerts; do
		printf 'IKD_NATS_%s_HASH: "%s"\n' "$(echo "$user" | tr a-z A-Z)" "$(bcrypt "nats-$user-password")"
	done > nats-password-hashes.conf
fi

for user in admin writer reader; do password "clickhouse-$user-password"; done
if [ ! -s clickhouse-users.xml ]; then
	sed -e "s/REPLACE_WITH_SHA256_OF_THE_ADMIN_PASSWORD/$(sha256 clickhouse-admin-password)/" \
	    -e "s/REPLACE_WITH_SHA256_OF_THE_WRITER_PASSWORD/$(sha256 clickhouse-writer-password)/" \
	    -e "s/REPLACE_WITH_SHA256_OF_THE_READER_PASSWORD/$(sha256 clickhouse-reader-password)/" \
	    ../clickhouse/users.xml.example > clickhouse-users.xml
fi
for user in admin writer reader; do
	[ -s "clickhouse-$user-dsn" ] ||
		printf 'clickhouse://ikd_%s:%s@clickhouse:9000/ikd\n' "$user" "$(cat "clickhouse-$user-password")" > "clickhouse-$user-dsn"
done

password grafana-admin-password
echo "secrets written to $(pwd)"
