package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// build says which build of pairingd is running: the version, the commit
// and its time, and the Go toolchain. Empty fields are unknown.
type build struct {
	Version   string // a release tag (v1.2.3), the module version, or "dev"
	Commit    string // the VCS revision
	Modified  bool   // built from a work tree with uncommitted changes
	Date      string // the commit time (RFC 3339), or the release build's date
	GoVersion string
	Platform  string // GOOS/GOARCH
}

// readBuild returns this binary's build. version, commit and date are the values
// a release build sets with -ldflags "-X main.version=... -X main.commit=...
// -X main.date=..."; each one that is set wins over what the Go toolchain
// recorded (the module version and the vcs.* settings of `go build` in a
// git work tree).
func readBuild(version, commit, date string) build {
	bi, _ := debug.ReadBuildInfo()
	return fromBuild(bi, version, commit, date)
}

func fromBuild(bi *debug.BuildInfo, version, commit, date string) build {
	i := build{Version: version, Commit: commit, Date: date, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi == nil {
		bi = &debug.BuildInfo{}
	}
	if bi.GoVersion != "" {
		i.GoVersion = bi.GoVersion
	}
	if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		i.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if commit == "" {
				i.Commit = s.Value
			}
		case "vcs.time":
			if date == "" {
				i.Date = s.Value
			}
		case "vcs.modified":
			i.Modified = commit == "" && s.Value == "true"
		}
	}
	if i.Version == "" {
		i.Version = "dev"
	}
	return i
}

// String is the text of `pairingd version`.
func (i build) String() string {
	commit := orUnknown(i.Commit)
	if i.Modified {
		commit += " (modified)"
	}
	return fmt.Sprintf("pairingd %s\ncommit: %s\nbuilt:  %s\ngo:     %s %s\n", i.Version, commit, orUnknown(i.Date), i.GoVersion, i.Platform)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
