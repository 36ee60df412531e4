package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pairingd/pairingd/api"
)

// A release build sets these with -ldflags "-X main.version=v1.2.3
// -X main.commit=<sha> -X main.date=<RFC 3339>"; otherwise the Go
// toolchain's build info fills them in (readBuild).
var (
	version string
	commit  string
	date    string
)

// buildInfo is this binary's build, for `pairingd version`, --version and
// the metrics.
func buildInfo() build { return readBuild(version, commit, date) }

func versionCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version, commit, build date and Go version",
		Args:  noCommand,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprint(a.stdout, buildInfo())
			return err
		},
	}
}

// versionString names the build in one word pair, for log lines.
func versionString() string { return "pairingd " + buildInfo().Version }

// forMetrics is what pairingd_build_info reports of this build.
func (b build) forMetrics() api.BuildInfo {
	return api.BuildInfo{Version: b.Version, Commit: b.Commit, GoVersion: b.GoVersion}
}
