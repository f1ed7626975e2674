// Command worker is the course delivery worker: it takes download jobs from Redis
// and turns each into a Google Drive folder for the buyer. See README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/app"
	"github.com/coursedl/worker/internal/config"
	"github.com/coursedl/worker/internal/process"
)

func main() { os.Exit(run()) }

func run() int {
	configPath := flag.String("config", "", "path of the YAML configuration file")
	check := flag.Bool("check-config", false, "load and validate the configuration, print it with secrets masked, and exit")
	flag.Parse()

	cfg, err := config.Load(*configPath, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "worker: configuration:\n%v\n", err)
		return 2
	}
	if *check {
		fmt.Println(cfg.String())
		return 0
	}
	// Before any child runs: a compromised downloader (ffmpeg parsing hostile
	// media) must not read this process's environment or memory.
	if err := process.NonDumpable(); err != nil {
		fmt.Fprintf(os.Stderr, "worker: %v\n", err)
		return 1
	}
	log, closeLog, err := app.NewLogger(cfg.Logs)
	if err != nil {
		fmt.Fprintf(os.Stderr, "worker: logs.dir: %v\n", err)
		return 2
	}
	defer closeLog()

	// The first SIGINT or SIGTERM starts a graceful stop; a second one ends the
	// process at once (its jobs are recovered as after a crash).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
		log.Info("stopping: no new jobs; send the signal again to stop at once")
		again := make(chan os.Signal, 1)
		signal.Notify(again, os.Interrupt, syscall.SIGTERM)
		<-again
		log.Warn("second signal: exiting now")
		closeLog()
		os.Exit(130)
	}()

	a, err := app.New(ctx, cfg, log)
	if err != nil {
		log.Error("start-up failed", zap.Error(err))
		return 1
	}
	defer func() {
		if err := a.Close(); err != nil {
			log.Error("closing connections and files", zap.Error(err))
		}
	}()
	if err := a.Run(ctx); err != nil {
		log.Error("worker failed", zap.Error(err))
		return 1
	}
	return 0
}
