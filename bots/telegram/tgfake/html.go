package tgfake

import (
	"fmt"
	"html"
	"strings"
)

// The tags Telegram's HTML parse mode accepts.
var htmlTags = map[string]bool{
	"b": true, "strong": true, "i": true, "em": true, "u": true, "ins": true,
	"s": true, "strike": true, "del": true, "span": true, "tg-spoiler": true,
	"a": true, "code": true, "pre": true, "blockquote": true, "tg-emoji": true,
}

// CheckHTML reports what Telegram would refuse in a text sent with
// parse_mode HTML: a "<" that does not open or close a supported tag, an
// end tag that does not match, a tag left open. Like Telegram it lets a
// lone "&" or ">" pass.
func CheckHTML(s string) error {
	var open []string
	for i := 0; i < len(s); i++ {
		if s[i] != '<' {
			continue
		}
		end := strings.IndexByte(s[i:], '>')
		if end < 0 {
			return fmt.Errorf("unclosed start tag at byte offset %d", i)
		}
		tag := s[i+1 : i+end]
		if name, ok := strings.CutPrefix(tag, "/"); ok {
			name = strings.ToLower(strings.TrimSpace(name))
			if len(open) == 0 || open[len(open)-1] != name {
				return fmt.Errorf("unexpected end tag at byte offset %d", i)
			}
			open = open[:len(open)-1]
		} else {
			name := strings.ToLower(tag)
			if j := strings.IndexAny(name, " \t\n/"); j >= 0 {
				name = name[:j]
			}
			if !htmlTags[name] {
				return fmt.Errorf("unsupported start tag %q at byte offset %d", name, i)
			}
			if name == "a" && !strings.Contains(tag, "href=") {
				return fmt.Errorf("tag \"a\" must have attribute href at byte offset %d", i)
			}
			open = append(open, name)
		}
		i += end
	}
	if len(open) > 0 {
		return fmt.Errorf("can't find end tag corresponding to start tag %q", open[len(open)-1])
	}
	return nil
}

// Visible is the text a person sees for an HTML-mode message: tags
// removed, entities decoded. Use it to assert on what the chat shows.
func Visible(s string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '>')
		if end < 0 {
			b.WriteString(s[i:])
			break
		}
		s = s[i+end+1:]
	}
	return html.UnescapeString(b.String())
}

// Plain is the text the chat shows for the message.
func (m SentMessage) Plain() string {
	if strings.EqualFold(m.ParseMode, "html") {
		return Visible(m.Text)
	}
	return m.Text
}
