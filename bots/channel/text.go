package channel

import "unicode/utf8"

// Truncate cuts s to at most n bytes: a bound on what a platform's value
// may take of a log line or a queue key.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Clip shortens s to at most n bytes on a rune boundary: a bound on a
// profile field the platform gives.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
