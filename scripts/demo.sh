#!/usr/bin/env bash
# demo.sh: one purchase delivered end to end on this machine (`make demo`).
#
# It plays the web app's part by hand: an order and its download_tasks row in
# MariaDB, the job LPUSHed onto Redis, is_enrolled set a second later. The worker
# (bin/worker, configs/demo.yaml) does the rest: yt-dlp fetches the course from
# cmd/fakeapp, rclone moves it to a "local" remote named gdrive that stands in for
# Google Drive, the row gets the link, and fakeapp receives and verifies the signed
# webhook. Everything it makes is under .run/demo/, wiped at the start.
#
# Exits 0 only when the task completed, fakeapp received its webhook with a valid
# signature, and the worker stopped cleanly on SIGTERM.
set -euo pipefail

cd "$(dirname "$0")/.."
START_NS=$(date +%s%N)

RUN=.run/demo
DB=coursedl_demo
LISTEN=127.0.0.1:18080
EMAIL=buyer@example.com
COURSE_URL="http://$LISTEN/courses/go-in-depth/lesson-1.mp4"
QUEUE=queue:downloads
REDIS=(redis-cli -h 127.0.0.1 -p 16379)
SQL=(mariadb --protocol=tcp -h 127.0.0.1 -P 13306 -uroot)
TASK_TIMEOUT=60    # seconds for the task to end
WEBHOOK_TIMEOUT=15 # seconds for the webhook, once the task ended
STOP_TIMEOUT=40    # seconds for the worker to stop after SIGTERM

step() { printf '\n==> %s\n' "$*"; }
heading() { printf '\n======== %s ========\n' "$*"; }
took() { awk -v ns=$(($(date +%s%N) - START_NS)) 'BEGIN { printf "%.1f s", ns / 1e9 }'; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
sql() { "${SQL[@]}" -N -B "$DB" -e "$1"; }

# received TYPE: fakeapp recorded a verified webhook of TYPE for the demo's task.
received() {
	[ -f "$RUN/webhooks.jsonl" ] && awk -v type="\"type\":\"$1\"" -v task="\"taskId\":$TASK_ID[,}]" '
		index($0, "\"verified\":true") && index($0, type) && $0 ~ task { found = 1 }
		END { exit !found }' "$RUN/webhooks.jsonl"
}

# The worker reads WORKER_* variables; only the ones set below may reach it.
for v in $(compgen -e); do
	if [[ $v == WORKER_* ]]; then unset "$v"; fi
done

WORKER_PID=
FAKEAPP_PID=

# stop PID NAME SECONDS: SIGTERM, then SIGKILL after SECONDS. Sets STOP_RC.
stop() {
	local pid=$1 name=$2 secs=$3 i
	STOP_RC=0
	alive "$pid" || { wait "$pid" 2>/dev/null || STOP_RC=$?; return 0; }
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < secs * 10; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	if alive "$pid"; then
		echo "demo: $name did not stop within ${secs}s of SIGTERM; killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || STOP_RC=$?
}

cleanup() {
	if alive "$WORKER_PID"; then stop "$WORKER_PID" worker 15; fi
	if alive "$FAKEAPP_PID"; then stop "$FAKEAPP_PID" fakeapp 5; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	echo
	echo "demo: FAILED: $*" >&2
	if [ -s "$RUN/worker.log" ]; then
		heading "worker stderr, last 40 lines ($RUN/worker.log)"
		tail -n 40 "$RUN/worker.log"
	fi
	if [ -s "$RUN/fakeapp.log" ]; then
		heading "fakeapp log, last 10 lines ($RUN/fakeapp.log)"
		tail -n 10 "$RUN/fakeapp.log"
	fi
	echo
	echo "demo failed after $(took)"
	exit 1
}

step "services: private Redis (127.0.0.1:16379) and MariaDB (127.0.0.1:13306)"
scripts/services.sh install
scripts/services.sh start

step "database $DB: recreated from deploy/schema.sql"
"${SQL[@]}" -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB"
"${SQL[@]}" "$DB" <deploy/schema.sql

step "redis: clearing the demo's keys ($QUEUE, dl:*) in db 0"
"${REDIS[@]}" DEL "$QUEUE" >/dev/null
"${REDIS[@]}" --scan --pattern 'dl:*' | xargs -r "${REDIS[@]}" DEL >/dev/null

step "build: bin/worker, bin/fakeapp"
go build -o bin/worker ./cmd/worker
go build -o bin/fakeapp ./cmd/fakeapp

step "work folder $RUN/"
rm -rf "$RUN"
mkdir -p "$RUN/drive" "$RUN/logs"
printf '[gdrive]\ntype = local\n' >"$RUN/rclone.conf"
echo "rclone remote 'gdrive' is a local remote standing in for Google Drive: uploads land in $RUN/drive/"
SECRET="whsec_$(head -c 24 /dev/urandom | base64)"

step "fakeapp on http://$LISTEN (serves the course, receives the webhook)"
if (exec 3<>"/dev/tcp/${LISTEN%:*}/${LISTEN#*:}") 2>/dev/null; then
	fail "something already listens on $LISTEN (a fakeapp left from an earlier run?)"
fi
FAKEAPP_SECRET=$SECRET bin/fakeapp -listen "$LISTEN" -out "$RUN/webhooks.jsonl" >"$RUN/fakeapp.log" 2>&1 &
FAKEAPP_PID=$!
for ((i = 0; ; i++)); do
	alive "$FAKEAPP_PID" || fail "fakeapp exited at start"
	(exec 3<>"/dev/tcp/${LISTEN%:*}/${LISTEN#*:}") 2>/dev/null && break
	((i < 100)) || fail "fakeapp did not listen on $LISTEN within 10 s"
	sleep 0.1
done

step "web app: an order is paid, its download task is created"
ids=$(sql "
	INSERT INTO orders (email, amount, status) VALUES ('$EMAIL', 19.99, 'paid');
	SET @order_id = LAST_INSERT_ID();
	INSERT INTO download_tasks (order_id, email, course_url, is_enrolled)
		VALUES (@order_id, '$EMAIL', '$COURSE_URL', 0);
	SELECT @order_id, LAST_INSERT_ID();") || fail "could not insert the order and its task"
read -r ORDER_ID TASK_ID <<<"$ids"
echo "order $ORDER_ID, task $TASK_ID: $COURSE_URL"

step "worker: bin/worker --config configs/demo.yaml (log: $RUN/worker.log)"
WORKER_MYSQL_DSN="root@tcp(127.0.0.1:13306)/$DB" \
	WORKER_WEBHOOK_SECRET=$SECRET \
	WORKER_UPLOAD_DEST="gdrive:$PWD/$RUN/drive/{folder}" \
	bin/worker --config configs/demo.yaml >"$RUN/worker.log" 2>&1 &
WORKER_PID=$!
for ((i = 0; ; i++)); do
	alive "$WORKER_PID" || {
		wait "$WORKER_PID" && rc=0 || rc=$?
		WORKER_PID=
		fail "the worker exited at start with status $rc"
	}
	grep -q 'worker started' "$RUN/worker.log" && break
	if ((i >= 150)); then
		echo "demo: no 'worker started' line within 15 s; going on" >&2
		break
	fi
	sleep 0.1
done

step "web app: job pushed onto $QUEUE"
JOB="{\"taskId\":$TASK_ID,\"email\":\"$EMAIL\",\"courseUrl\":\"$COURSE_URL\",\"orderId\":$ORDER_ID}"
echo "LPUSH $QUEUE '$JOB'"
"${REDIS[@]}" LPUSH "$QUEUE" "$JOB" >/dev/null

sleep 1
step "web app: enrollment succeeded, is_enrolled = 1"
sql "UPDATE download_tasks SET is_enrolled = 1 WHERE id = $TASK_ID"

step "waiting for task $TASK_ID to end (at most ${TASK_TIMEOUT}s)"
STATUS= last=
deadline=$(($(date +%s) + TASK_TIMEOUT))
while :; do
	STATUS=$(sql "SELECT status FROM download_tasks WHERE id = $TASK_ID")
	if [ "$STATUS" != "$last" ]; then
		echo "  $(date -u +%H:%M:%S.%3N)  status: $STATUS"
		last=$STATUS
	fi
	case $STATUS in completed | failed) break ;; esac
	alive "$WORKER_PID" || break
	(($(date +%s) < deadline)) || break
	sleep 0.25
done

WEBHOOK_OK=no
if [ "$STATUS" = completed ] || [ "$STATUS" = failed ]; then
	# The webhook leaves through the outbox after the row is written.
	deadline=$(($(date +%s) + WEBHOOK_TIMEOUT))
	while :; do
		if received "task.$STATUS"; then
			[ "$STATUS" = completed ] && WEBHOOK_OK=yes
			break
		fi
		alive "$WORKER_PID" || break
		(($(date +%s) < deadline)) || break
		sleep 0.2
	done
fi

step "stopping the worker with SIGTERM"
WORKER_RC=gone
if alive "$WORKER_PID"; then
	stop "$WORKER_PID" worker "$STOP_TIMEOUT"
	WORKER_RC=$STOP_RC
else
	wait "$WORKER_PID" && WORKER_RC=0 || WORKER_RC=$?
	echo "the worker had already exited, status $WORKER_RC" >&2
	WORKER_RC="exited early ($WORKER_RC)"
fi
WORKER_PID=
echo "worker exit status: $WORKER_RC"

heading "lifecycle lines ($RUN/logs/lifecycle-*.log)"
cat "$RUN"/logs/lifecycle-*.log 2>/dev/null || echo "(none)"

heading "task log, last 15 lines ($RUN/logs/tasks/task-$TASK_ID.log)"
tail -n 15 "$RUN/logs/tasks/task-$TASK_ID.log" 2>/dev/null || echo "(none)"

heading "download_tasks"
"${SQL[@]}" -t "$DB" -e "SELECT id, status, drive_url, error_message FROM download_tasks"

heading "webhooks received by fakeapp ($RUN/webhooks.jsonl)"
cat "$RUN/webhooks.jsonl" 2>/dev/null || echo "(none)"
echo "task.completed for task $TASK_ID received with a valid signature: $WEBHOOK_OK"

heading "uploaded files ($RUN/drive, the 'gdrive' local remote)"
find "$RUN/drive" -type f -printf '%p  (%s bytes)\n'

echo
problems=()
[ "$STATUS" = completed ] || problems+=("task status is '${STATUS:-unknown}', not completed")
[ "$WEBHOOK_OK" = yes ] || problems+=("no verified task.completed webhook for task $TASK_ID")
[ "$WORKER_RC" = 0 ] || problems+=("worker exit status $WORKER_RC after SIGTERM, not 0")
if [ ${#problems[@]} -gt 0 ]; then
	fail "$(IFS=';'; echo "${problems[*]}" | sed 's/;/; /g')"
fi
echo "demo: OK: task $TASK_ID completed, webhook verified, worker stopped cleanly"
echo "demo took $(took)"
