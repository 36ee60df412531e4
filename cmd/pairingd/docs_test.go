package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// repoRoot is where the documentation lives, seen from this package.
const repoRoot = "../.."

// docPages are the Markdown pages a reader walks: the README, the project
// files beside it and everything under docs/.
func docPages(t *testing.T) []string {
	t.Helper()
	pages := []string{"README.md", "CHANGELOG.md", "SECURITY.md", "CONTRIBUTING.md"}
	more, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil || len(more) == 0 {
		t.Fatalf("no pages under docs/: %v", err)
	}
	for _, p := range more {
		rel, _ := filepath.Rel(repoRoot, p)
		pages = append(pages, rel)
	}
	return pages
}

var (
	mdLink  = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	heading = regexp.MustCompile("(?m)^#{1,6} (.+)$")
	fence   = regexp.MustCompile("(?ms)^```.*?^```")
)

// anchor is GitHub's id for a heading: lower case, punctuation dropped,
// spaces to dashes.
func anchor(title string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(title) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func anchors(page string) map[string]bool {
	out := map[string]bool{}
	for _, m := range heading.FindAllStringSubmatch(fence.ReplaceAllString(page, ""), -1) {
		out[anchor(m[1])] = true
	}
	return out
}

// TestDocsLinksResolve keeps the documentation walkable: every relative
// link points at a file of the repository (and at a heading that exists,
// when it names one), and no page cites a path outside the repository.
func TestDocsLinksResolve(t *testing.T) {
	for _, page := range docPages(t) {
		b, err := os.ReadFile(filepath.Join(repoRoot, page))
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for _, outside := range []string{"/work/", "DESIGN.md", "STYLE.md"} {
			if strings.Contains(text, outside) {
				t.Errorf("%s cites %q, which is not in the repository", page, outside)
			}
		}
		for _, m := range mdLink.FindAllStringSubmatch(fence.ReplaceAllString(text, ""), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			dest := filepath.Join(filepath.Dir(filepath.Join(repoRoot, page)), file)
			if file == "" {
				dest = filepath.Join(repoRoot, page)
			}
			rel, err := filepath.Rel(repoRoot, dest)
			if err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s: link %q leaves the repository", page, target)
				continue
			}
			if _, err := os.Stat(dest); err != nil {
				t.Errorf("%s: link %q: no file %s", page, target, rel)
				continue
			}
			if frag != "" && strings.HasSuffix(dest, ".md") {
				b, _ := os.ReadFile(dest)
				if !anchors(string(b))[frag] {
					t.Errorf("%s: link %q: %s has no heading #%s", page, target, rel, frag)
				}
			}
		}
	}
}

// TestReadmeIsThePathIn keeps the README short and starting with the two
// commands that work with only Go installed.
func TestReadmeIsThePathIn(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	if n := strings.Count(readme, "\n"); n > 300 {
		t.Errorf("README.md has %d lines; keep it the path in (at most 300) and move reference to docs/", n)
	}
	first := fence.FindString(readme)
	for _, cmd := range []string{"go run ./cmd/pairingd serve", "go test ./..."} {
		if !strings.Contains(first, cmd) {
			t.Errorf("the README's first code block lacks %q", cmd)
		}
	}
}

// quickStart is the README's quick start: the first sh block after its
// heading.
func quickStart(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "\n## Quick start")
	if !ok {
		t.Fatal("README.md has no Quick start section")
	}
	_, block, ok := strings.Cut(after, "```sh\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("the Quick start has no sh block")
	}
	return block
}

// TestReadmeQuickStart runs the README's quick start as written, with bash
// and curl, against the binary TestMain built (its `go build` line is the
// one line not run), on a free port in a fresh directory.
func TestReadmeQuickStart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	for _, tool := range []string{"bash", "curl", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the quick start needs %s", tool)
		}
	}
	script := quickStart(t)
	const build = "go build -o pairingd ./cmd/pairingd\n"
	if !strings.HasPrefix(script, build) {
		t.Fatalf("the quick start should begin with %q", build)
	}
	script = strings.TrimPrefix(script, build)

	dir := t.TempDir()
	bin, err := os.ReadFile(binPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pairingd"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "PORT=" + strconv.Itoa(freePort(t))}
	// Its own process group, so the server it starts in the background is
	// stopped with it if the script fails half-way.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the quick start did not finish\nstdout:\n%s\nstderr:\n%s", out.String(), errb.String())
	}
	if err != nil {
		t.Fatalf("the quick start failed: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	for _, want := range []string{`"outcome":"register"`, `"outcome":"linked"`, `"outcome":"match","user_id":"site-user-7"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the quick start printed no %s\nstdout:\n%s\nstderr:\n%s", want, out.String(), errb.String())
		}
	}
}

// freePort is a TCP port nothing listens on at the moment.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
