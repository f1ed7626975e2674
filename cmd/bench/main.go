// Command bench measures the worker's performance figures (make bench): it prints
// a table and then one "BENCH <name> <value> <unit>" line per figure. It needs the
// private Redis and MariaDB of scripts/services.sh and their variables
// (`eval "$(scripts/services.sh env)"`), and the worker binary. See package
// internal/bench.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/coursedl/worker/internal/bench"
)

func main() { os.Exit(run()) }

func run() int {
	if len(os.Args) > 1 && os.Args[1] == bench.ChildArg {
		return bench.Child(os.Args[2:])
	}
	worker := flag.String("worker", "bin/worker", "the worker binary")
	workerctl := flag.String("workerctl", "bin/workerctl", "the workerctl binary; figures that need it are NA when it is missing")
	only := flag.String("only", "", "comma-separated groups to run: "+strings.Join(bench.Groups(), ", ")+" (default all)")
	quick := flag.Bool("quick", false, "fewer rounds and smaller sizes: a smoke run, not figures to compare")
	keep := flag.Bool("keep", false, "keep the scratch folder (worker logs, task logs) and print where it is")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of this process (the in-process figures: queue) to this file")
	flag.Parse()

	root, err := os.Getwd()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	opts := bench.Options{
		Root:      root,
		Worker:    abs(*worker),
		WorkerCtl: abs(*workerctl),
		Self:      self,
		Quick:     *quick,
		Keep:      *keep,
		Out:       os.Stdout,
		Log:       os.Stderr,
	}
	if *only != "" {
		opts.Only = strings.Split(*only, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			return 1
		}
		defer func() {
			if err := f.Close(); err != nil {
				fmt.Fprintf(os.Stderr, "bench: -cpuprofile: %v\n", err)
			}
		}()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	if err := bench.Run(ctx, opts); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	return 0
}

// abs makes a path absolute ("" stays "").
func abs(p string) string {
	if p == "" {
		return ""
	}
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}
