#!/usr/bin/env bash
# services.sh: the project's own Redis and MariaDB for tests, benchmarks and the demo.
#
#   scripts/services.sh install [PKG...]
#                                 apt-get the Debian packages the project needs, and
#                                 any PKG given (root); apt-get update only if one is missing
#   scripts/services.sh start     start private Redis and MariaDB on loopback (reused if up)
#   scripts/services.sh stop      stop them
#   scripts/services.sh env       print the variables the tests read
#
# The instances are private: their own ports (REDIS_PORT, MYSQL_PORT), data under
# RUN_DIR, bound to 127.0.0.1 only. Nothing here touches a system-wide Redis or MySQL,
# so fault tests may stop and restart them freely.
set -euo pipefail

RUN_DIR=${COURSEDL_RUN_DIR:-/tmp/coursedl-services}
REDIS_PORT=${COURSEDL_REDIS_PORT:-16379}
MYSQL_PORT=${COURSEDL_MYSQL_PORT:-13306}
# What the tests and the demo run: the two services and their clients, rclone and
# yt-dlp (the real tools the upload and download tests drive), and the tools that
# check the deployment files in deploy/: systemd-analyze (package systemd; only
# the program is used, nothing is started) and docker-compose (it validates the
# compose file without a Docker engine), and promtool (package prometheus) that
# checks and unit-tests the alert rules in deploy/prometheus.
PACKAGES=(redis-server redis-tools mariadb-server mariadb-client rclone yt-dlp systemd docker-compose prometheus)

log() { printf 'services: %s\n' "$*" >&2; }

# And the headless browser that drives the console in its browser test
# (internal/console, TestBrowser), with a font for its screenshots: chromium
# only recommends one, and packages here go without recommends.
PACKAGES+=(chromium fonts-liberation)

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

install() {
	local missing=() p
	for p in "${PACKAGES[@]}" "$@"; do
		installed "$p" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing ${missing[*]}"
	if [ "$(id -u)" -ne 0 ]; then
		log "not root: install ${missing[*]} yourself (apt-get install ${missing[*]})"
		return 1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	# The packages start system-wide daemons on the standard ports; the project
	# does not use them, and leaves them as the machine's owner set them up.
}

redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }
mysql_up() { mariadb-admin --protocol=tcp -h 127.0.0.1 -P "$MYSQL_PORT" -uroot ping >/dev/null 2>&1; }

wait_for() { # wait_for NAME CHECK: up to 30 s
	local name=$1 check=$2 i
	for i in $(seq 1 300); do
		"$check" && return 0
		sleep 0.1
	done
	log "$name did not come up; see $RUN_DIR/$name.log"
	tail -n 20 "$RUN_DIR/$name.log" >&2 || true
	return 1
}

start_redis() {
	if redis_up; then return 0; fi
	mkdir -p "$RUN_DIR/redis"
	# AOF on, fsync every second: the deployment's setting, so fault tests restart
	# a Redis that behaves as production's does.
	redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" \
		--dir "$RUN_DIR/redis" --appendonly yes --appendfsync everysec --save "" \
		--pidfile "$RUN_DIR/redis.pid" --logfile "$RUN_DIR/redis.log"
	wait_for redis redis_up
	log "redis on 127.0.0.1:$REDIS_PORT"
}

start_mysql() {
	if mysql_up; then return 0; fi
	mkdir -p "$RUN_DIR"
	if [ ! -d "$RUN_DIR/mysql/mysql" ]; then
		log "initialising MariaDB data in $RUN_DIR/mysql"
		rm -rf "$RUN_DIR/mysql"
		if ! mariadb-install-db --no-defaults --user="$(id -un)" --datadir="$RUN_DIR/mysql" \
			--auth-root-authentication-method=normal --skip-test-db >"$RUN_DIR/mysql-install.log" 2>&1; then
			log "mariadb-install-db failed:"
			head -n 20 "$RUN_DIR/mysql-install.log" >&2
			return 1
		fi
	fi
	# Small buffers and relaxed flushing: test data is thrown away.
	nohup mariadbd --no-defaults --user="$(id -un)" --datadir="$RUN_DIR/mysql" \
		--bind-address=127.0.0.1 --port="$MYSQL_PORT" --socket="$RUN_DIR/mysql.sock" \
		--pid-file="$RUN_DIR/mysql.pid" --skip-name-resolve \
		--innodb-buffer-pool-size=128M --innodb-flush-log-at-trx-commit=2 \
		--max-connections=500 >"$RUN_DIR/mysql.log" 2>&1 &
	wait_for mysql mysql_up
	log "mariadb on 127.0.0.1:$MYSQL_PORT"
}

stop() {
	redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
	if [ -f "$RUN_DIR/mysql.pid" ]; then
		kill "$(cat "$RUN_DIR/mysql.pid")" 2>/dev/null || true
	fi
}

env_vars() {
	echo "export TEST_REDIS_ADDR=127.0.0.1:$REDIS_PORT"
	echo "export TEST_MYSQL_DSN='root@tcp(127.0.0.1:$MYSQL_PORT)/'"
	echo "export COURSEDL_RUN_DIR=$RUN_DIR"
}

case "${1:-}" in
install)
	shift
	install "$@"
	;;
start)
	start_redis
	start_mysql
	;;
stop) stop ;;
env) env_vars ;;
*)
	echo "usage: $0 install|start|stop|env" >&2
	exit 2
	;;
esac
