package templates

import (
	"bytes"
	"strings"
	"testing"
)

// The hosted pages are overridden like the chat texts: a file of the same
// name under <dir>/pages/ replaces the embedded page, an asset under
// <dir>/pages/assets/ the embedded one; the rest stay embedded.
func TestPagesOverride(t *testing.T) {
	dir := t.TempDir()
	if err := writeFile(dir+"/pages/signin_message.html", `<p class="mine">{{.}}</p>`); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(dir+"/pages/assets/signin.css", "body { color: teal; }"); err != nil {
		t.Fatal(err)
	}
	pages, err := LoadPages(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, "signin_message.html", "<x>"); err != nil || b.String() != `<p class="mine">&lt;x&gt;</p>` {
		t.Fatalf("override not applied: %q, %v", b.String(), err)
	}
	if pages.Lookup("signin.html") == nil {
		t.Fatal("the pages not overridden are gone")
	}
	read := PageAsset(dir)
	if css, err := read("signin.css"); err != nil || string(css) != "body { color: teal; }" {
		t.Fatalf("asset override: %q, %v", css, err)
	}
	if js, err := read("signin.js"); err != nil || !strings.Contains(string(js), "fetch(") {
		t.Fatalf("embedded asset: %v", err)
	}
	if _, err := read("../../etc/passwd"); err == nil {
		t.Fatal("an asset outside pages/assets was read")
	}
	if err := writeFile(dir+"/pages/broken.html", `{{.Missing`); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPages(dir); err == nil {
		t.Fatal("a page that does not parse was accepted")
	}
}
