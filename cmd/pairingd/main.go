// Command pairingd links the people who chat with a business's bots to
// their accounts on the business's website.
//
//	pairingd [--config FILE] <command> [flags]
//
// Commands: serve, migrate, keys, pins, links, messenger, version.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
