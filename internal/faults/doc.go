// Package faults holds the worker's fault tests: the real worker binary, built
// once, run as separate processes against private redis-server and mariadbd
// instances that the tests start, stop and restart themselves, with the fake
// downloader, rclone on a local remote and a webhook receiver that checks
// every signature and counts every delivery.
//
// The faults: kill -9 of a random worker at many moments of the pipeline (and
// restarting it), kill -9 half-way through a course whose lessons go to the
// destination while it downloads (none downloaded or moved twice), SIGTERM
// during a download, Redis restarted (its data kept by
// the AOF), MariaDB stopped for a while, the web app's webhook endpoint down
// for a minute, one worker's clock skewed by two minutes either way (test hook
// COURSEDL_CLOCK_SKEW), one worker cut off from Redis mid-download (a TCP
// proxy), processes started under a worker.id in use, and, with the workers
// finding Redis through three Sentinels, kill -9 of the master twice (each time
// the replica is promoted). After each, every task must have completed exactly once, its
// files must be in its destination once, its event must have reached the web
// app, and no job may be left in any of the worker's lists. Each test logs its
// figures on one line:
//
//	FAULTS <test> tasks=N faults=N lost=N twice=N deliveries_lost=N ...
//
// The package holds tests only; `make test-faults` runs them.
package faults
