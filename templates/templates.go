// Package templates holds every text a person reads: chat messages per
// locale and the hosted HTML pages. Texts are embedded in the binary;
// operators can override any of them from a directory without rebuilding.
//
// Chat texts live in text/<locale>/*.yaml as flat maps of key -> Go
// text/template source. Every file of a locale is merged, so each adapter
// can keep its own file (common.yaml, telegram.yaml, messenger.yaml). An
// override directory has the same layout; its keys replace the embedded
// ones key by key.
package templates

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"text/template"

	"golang.org/x/text/feature/plural"
	"golang.org/x/text/language"
	"gopkg.in/yaml.v3"
)

//go:embed text pages
var embedded embed.FS

// Catalog renders chat texts in a person's locale.
type Catalog struct {
	fallback string
	locales  map[string]map[string]*template.Template
	tags     []language.Tag
	names    []string
	matcher  language.Matcher
}

// Load reads the embedded texts, then the override directory if not empty,
// and checks that every template parses. fallback is the locale used when
// a person's language is not shipped (for example "en").
func Load(overrideDir, fallback string) (*Catalog, error) {
	src := map[string]map[string]string{}
	if err := readTree(embedded, "text", src); err != nil {
		return nil, err
	}
	if overrideDir != "" {
		if err := readTree(os.DirFS(overrideDir), ".", src); err != nil {
			return nil, fmt.Errorf("templates override %s: %w", overrideDir, err)
		}
	}
	if _, ok := src[fallback]; !ok {
		return nil, fmt.Errorf("templates: fallback locale %q has no texts", fallback)
	}
	c := &Catalog{fallback: fallback, locales: map[string]map[string]*template.Template{}}
	// The fallback comes first so the matcher prefers it on a tie.
	c.names = append(c.names, fallback)
	for loc := range src {
		if loc != fallback {
			c.names = append(c.names, loc)
		}
	}
	sort.Strings(c.names[1:])
	for _, loc := range c.names {
		tag, err := language.Parse(loc)
		if err != nil {
			return nil, fmt.Errorf("templates: locale folder %q: %w", loc, err)
		}
		c.tags = append(c.tags, tag)
		c.locales[loc] = map[string]*template.Template{}
		for key, text := range src[loc] {
			t, err := template.New(key).Funcs(funcs(tag)).Option("missingkey=error").Parse(text)
			if err != nil {
				return nil, fmt.Errorf("templates: %s/%s: %w", loc, key, err)
			}
			c.locales[loc][key] = t
		}
	}
	c.matcher = language.NewMatcher(c.tags)
	return c, nil
}

func readTree(fsys fs.FS, root string, into map[string]map[string]string) error {
	return fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return nil
		}
		loc := path.Base(path.Dir(p))
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		var m map[string]string
		if err := yaml.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if into[loc] == nil {
			into[loc] = map[string]string{}
		}
		for k, v := range m {
			into[loc][k] = v
		}
		return nil
	})
}

// Locale picks the shipped locale for a platform language code
// ("ru", "en-US", "zh_TW", "fr_FR"); unknown or empty codes get the
// fallback.
func (c *Catalog) Locale(code string) string {
	code = strings.ReplaceAll(strings.TrimSpace(code), "_", "-")
	if code == "" {
		return c.fallback
	}
	tag, err := language.Parse(code)
	if err != nil {
		return c.fallback
	}
	_, idx, conf := c.matcher.Match(tag)
	if conf == language.No {
		return c.fallback
	}
	return c.names[idx]
}

// Text renders key in the locale best matching code, falling back to the
// fallback locale's text when the locale lacks the key. data is the
// template's dot. A missing key or a failing template yields the key
// itself in brackets, so a chat never gets an empty message.
func (c *Catalog) Text(code, key string, data any) string {
	loc := c.Locale(code)
	t, ok := c.locales[loc][key]
	if !ok {
		t, ok = c.locales[c.fallback][key]
	}
	if !ok {
		return "[" + key + "]"
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "[" + key + "]"
	}
	return strings.TrimSpace(b.String())
}

// Has reports whether the fallback locale defines key.
func (c *Catalog) Has(key string) bool {
	_, ok := c.locales[c.fallback][key]
	return ok
}

// Keys lists the keys a locale defines, sorted.
func (c *Catalog) Keys(locale string) []string {
	var out []string
	for k := range c.locales[locale] {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Locales lists the shipped locales, fallback first.
func (c *Catalog) Locales() []string { return append([]string(nil), c.names...) }

// funcs are the template functions. plural picks a form by CLDR plural
// category for the locale: {{plural .Minutes "one:минуту" "few:минуты"
// "many:минут" "other:минуты"}}; "other:" is used when the category has no
// form of its own.
func funcs(tag language.Tag) template.FuncMap {
	return template.FuncMap{
		"plural": func(n int, forms ...string) string {
			want := formName(plural.Cardinal.MatchPlural(tag, abs(n), 0, 0, 0, 0))
			other := ""
			for _, f := range forms {
				cat, text, _ := strings.Cut(f, ":")
				if cat == want {
					return text
				}
				if cat == "other" {
					other = text
				}
			}
			return other
		},
	}
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func formName(f plural.Form) string {
	switch f {
	case plural.Zero:
		return "zero"
	case plural.One:
		return "one"
	case plural.Two:
		return "two"
	case plural.Few:
		return "few"
	case plural.Many:
		return "many"
	}
	return "other"
}
