package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildTakesVCSSettingsAndLdflagsWin(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	got := fromBuild(bi, "", "", "")
	if got.Version != "v1.4.0" || got.Commit != "0123abcd" || got.Date != "2026-12-01T10:00:00Z" || !got.Modified || got.GoVersion != "go1.26.8" {
		t.Fatalf("from the build info: %+v", got)
	}
	got = fromBuild(bi, "v2.0.0", "feedbeef", "2026-12-06T20:00:00Z")
	if got.Version != "v2.0.0" || got.Commit != "feedbeef" || got.Date != "2026-12-06T20:00:00Z" || got.Modified {
		t.Fatalf("ldflags must win: %+v", got)
	}
	got = fromBuild(&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "", "", "")
	if got.Version != "dev" || got.Commit != "" || got.GoVersion == "" || got.Platform == "" {
		t.Fatalf("a build without vcs settings: %+v", got)
	}
	for _, want := range []string{"pairingd dev\n", "commit: unknown\n", "built:  unknown\n", "go:     go"} {
		if !strings.Contains(got.String(), want) {
			t.Errorf("%q lacks %q", got.String(), want)
		}
	}
	if s := fromBuild(bi, "", "", "").String(); !strings.Contains(s, "commit: 0123abcd (modified)\n") {
		t.Errorf("modified work tree not shown: %q", s)
	}
}
