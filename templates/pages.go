package templates

import (
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path"
)

// LoadPages parses the hosted HTML pages (pages/*.html), then the
// override directory's pages/*.html if any: a file of the same name
// replaces the embedded page.
func LoadPages(overrideDir string) (*htmltemplate.Template, error) {
	t := htmltemplate.New("pages")
	if err := parsePages(t, embedded, "pages"); err != nil {
		return nil, err
	}
	if overrideDir != "" {
		if err := parsePages(t, os.DirFS(overrideDir), "pages"); err != nil {
			return nil, fmt.Errorf("templates override %s: %w", overrideDir, err)
		}
	}
	return t, nil
}

func parsePages(t *htmltemplate.Template, fsys fs.FS, dir string) error {
	names, err := fs.Glob(fsys, path.Join(dir, "*.html"))
	if err != nil {
		return err
	}
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return err
		}
		if _, err := t.New(path.Base(n)).Parse(string(b)); err != nil {
			return fmt.Errorf("page %s: %w", n, err)
		}
	}
	return nil
}

// PageAsset reads a script or style sheet of the pages (pages/assets/),
// from the override directory first.
func PageAsset(overrideDir string) func(name string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		if overrideDir != "" {
			if b, err := os.ReadFile(path.Join(overrideDir, "pages", "assets", path.Base(name))); err == nil {
				return b, nil
			}
		}
		return fs.ReadFile(embedded, path.Join("pages", "assets", path.Base(name)))
	}
}
