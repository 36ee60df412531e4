// Command pairingd links the people who chat with a business's bots to
// their accounts on the business's website.
//
//	pairingd [--config FILE] <command> [flags]
//
// Commands: serve, migrate, keys, pins, links, messenger, version, demo.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// defaultGOGC is the garbage collector's target unless GOGC is set: the
// live heap is a few MB, so collecting less often costs little memory
// (resident stays well under 100 MB under load) and saves CPU per request.
const defaultGOGC = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGOGC)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
