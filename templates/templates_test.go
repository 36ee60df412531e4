package templates

import "testing"

func TestPluralAndLocale(t *testing.T) {
	c, err := Load("", "en")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		code string
		n    int
		want string
	}{
		{"ru", 1, "1 минуту"}, {"ru", 3, "3 минуты"}, {"ru", 5, "5 минут"}, {"ru", 11, "11 минут"},
		{"ru", 21, "21 минуту"}, {"ru-RU", 22, "22 минуты"}, {"en", 1, "1 minute"}, {"en-US", 10, "10 minutes"},
		{"fr_FR", 0, "0 minute"}, {"zh-TW", 5, "5 分鐘"}, {"zh-Hant", 5, "5 分鐘"}, {"xx-unknown", 2, "2 minutes"}, {"", 2, "2 minutes"},
	}
	for _, tc := range cases {
		if got := c.Text(tc.code, "minutes", map[string]any{"Minutes": tc.n}); got != tc.want {
			t.Errorf("%s %d: got %q want %q", tc.code, tc.n, got, tc.want)
		}
	}
	if got := c.Text("en", "no_such_key", nil); got != "[no_such_key]" {
		t.Errorf("missing key: %q", got)
	}
}

func TestOverrideDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := writeFile(dir+"/ru/custom.yaml", "minutes: 'ровно {{.Minutes}}'\n"); err != nil {
		t.Fatal(err)
	}
	c, err := Load(dir, "en")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Text("ru", "minutes", map[string]any{"Minutes": 5}); got != "ровно 5" {
		t.Errorf("override not applied: %q", got)
	}
	if got := c.Text("en", "minutes", map[string]any{"Minutes": 5}); got != "5 minutes" {
		t.Errorf("other locale changed: %q", got)
	}
}

func TestBadOverrideIsAnError(t *testing.T) {
	dir := t.TempDir()
	if err := writeFile(dir+"/en/x.yaml", "minutes: '{{.Minutes'\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir, "en"); err == nil {
		t.Fatal("want parse error")
	}
}
