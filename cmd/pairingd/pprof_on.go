//go:build pprof

package main

import (
	"net/http"
	_ "net/http/pprof" // profiling endpoints, only in builds with -tags pprof
	"os"
)

// Builds with -tags pprof serve net/http/pprof on PAIRINGD_PPROF_LISTEN
// (default 127.0.0.1:6060), for profiling under load.
func init() {
	addr := os.Getenv("PAIRINGD_PPROF_LISTEN")
	if addr == "" {
		addr = "127.0.0.1:6060"
	}
	go func() { _ = http.ListenAndServe(addr, nil) }()
}
