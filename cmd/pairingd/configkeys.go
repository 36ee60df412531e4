package main

import (
	"encoding"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The keys of the configuration are the yaml tags of the sections'
// structs; this file walks them to apply the environment and to name the
// nearest real key when a file or a variable misspells one.

// otherVariables are PAIRINGD_ variables that are not configuration keys.
var otherVariables = map[string]bool{"PAIRINGD_CONFIG": true, "PAIRINGD_PPROF_LISTEN": true}

// movedKeys are keys of earlier releases: a file or variable that still
// uses one is told where it went.
var movedKeys = map[string]string{
	"server.secret":                      "moved to pairing.secret",
	"site.link_url":                      "moved to pairing.link_url",
	"site.webhook_retry_for":             "moved to jobs.max_age",
	"site.webhook_backoff_min":           "moved to jobs.backoff_min",
	"site.webhook_backoff_max":           "moved to jobs.backoff_max",
	"site.webhook_poll_interval":         "moved to jobs.poll_interval",
	"site.webhook_workers":               "moved to jobs.workers",
	"site.events_retention":              "moved to jobs.site_events.retention",
	"inbound.max_age":                    "dropped: an inbound event is given up 1h after it arrived",
	"inbound.workers":                    "moved to jobs.workers",
	"inbound.poll_interval":              "moved to jobs.poll_interval",
	"inbound.retention":                  "dropped: handled events are kept 48h, past Meta's 36h of redeliveries",
	"notify.poll_interval":               "moved to jobs.poll_interval",
	"notify.batch_size":                  "moved to jobs.notify.batch_size",
	"notify.send_timeout":                "moved to jobs.send_timeout",
	"notify.parallel":                    "moved to jobs.workers",
	"notify.max_attempts":                "moved to jobs.notify.max_attempts",
	"notify.max_age":                     "moved to jobs.max_age",
	"notify.backoff_min":                 "moved to jobs.backoff_min",
	"notify.backoff_max":                 "moved to jobs.backoff_max",
	"notify.lease":                       "dropped: the lease is six times jobs.send_timeout",
	"notify.telegram_rate_per_second":    "moved to channels[N].rate_per_second of each telegram channel",
	"notify.telegram_per_chat_interval":  "moved to channels[N].per_chat_interval of each telegram channel",
	"notify.messenger_rate_per_second":   "moved to channels[N].rate_per_second of each messenger channel",
	"notify.messenger_per_chat_interval": "moved to channels[N].per_chat_interval of each messenger channel",
	"pairing.magic_link":                 "dropped: pairing.magic_link_ttl above 0 turns magic links on, 0 off",
	"jobs.inbound.max_age":               "dropped: an inbound event is given up 1h after it arrived",
	"jobs.site_events.max_age":           "moved to jobs.max_age, one give-up age for site events and notifications",
	"jobs.notify.max_age":                "moved to jobs.max_age, one give-up age for site events and notifications",
	"jobs.notify.send_timeout":           "moved to jobs.send_timeout, one bound for a send of a site event or a notification",
	"site.webhook_timeout":               "moved to jobs.send_timeout, one bound for a send of a site event or a notification",
	"server.read_timeout":                "dropped: fixed at 15s",
	"server.write_timeout":               "dropped: fixed at 30s",
	"server.idle_timeout":                "dropped: fixed at 2m",
	"server.max_header_bytes":            "dropped: fixed at 64 KiB",
	"server.webhook_body_limit":          "dropped: fixed at 1 MiB",
	"server.public_burst":                "dropped: the burst is twice server.public_rate_per_second",
	"oidc.access_token_ttl":              "moved to oidc.token_ttl, one lifetime for access and ID tokens",
	"oidc.id_token_ttl":                  "moved to oidc.token_ttl, one lifetime for access and ID tokens",
	"oidc.code_ttl":                      "dropped: fixed at 1m",
	"oidc.link_window":                   "dropped: fixed at 10m",
}

// yamlField is one key of a struct, inline structs flattened.
type yamlField struct {
	key   string
	index []int
	typ   reflect.Type
}

// yamlFields lists the keys of struct type t.
func yamlFields(t reflect.Type) []yamlField {
	var out []yamlField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case name == "-" || !f.IsExported():
		case opts == "inline":
			for _, in := range yamlFields(f.Type) {
				in.index = append([]int{i}, in.index...)
				out = append(out, in)
			}
		case name != "":
			out = append(out, yamlField{key: name, index: []int{i}, typ: f.Type})
		}
	}
	return out
}

var (
	durationType  = reflect.TypeOf(time.Duration(0))
	channelsType  = reflect.TypeOf([]ChannelConfig(nil))
	unmarshalType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

// isSection: a struct whose keys are nested under it.
func isSection(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(unmarshalType)
}

// envName is the variable of a key path: PAIRINGD_ + the path upper-cased,
// "." and list indexes joined by "_".
func envName(path string) string {
	r := strings.NewReplacer(".", "_", "[", "_", "]", "")
	return "PAIRINGD_" + strings.ToUpper(r.Replace(path))
}

// applyEnv overrides every key from its variable (or the file its _FILE
// variable names) and returns the names of all variables it looked at.
func applyEnv(cfg *Config, getenv func(string) string) (map[string]bool, error) {
	known := map[string]bool{}
	err := envStruct(reflect.ValueOf(cfg).Elem(), "", getenv, known)
	return known, err
}

func envStruct(v reflect.Value, path string, getenv func(string) string, known map[string]bool) error {
	for _, f := range yamlFields(v.Type()) {
		p := strings.TrimPrefix(path+"."+f.key, ".")
		fv := v.FieldByIndex(f.index)
		var err error
		switch {
		case f.typ == channelsType:
			err = envChannels(fv.Addr().Interface().(*[]ChannelConfig), p, getenv, known)
		case isSection(f.typ):
			err = envStruct(fv, p, getenv, known)
		default:
			err = envLeaf(fv, p, getenv, known)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// envChannels applies the environment to the channels list. An item may
// be added from the environment alone: index n exists if
// PAIRINGD_CHANNELS_<n>_NAME or _TYPE is set.
func envChannels(chs *[]ChannelConfig, path string, getenv func(string) string, known map[string]bool) error {
	for n := len(*chs); ; n++ {
		item := fmt.Sprintf("%s[%d]", path, n)
		if getenv(envName(item+".name")) == "" && getenv(envName(item+".type")) == "" {
			break
		}
		*chs = append(*chs, ChannelConfig{})
	}
	for i := range *chs {
		ch, item := &(*chs)[i], fmt.Sprintf("%s[%d]", path, i)
		var typ string
		if err := envLeaf(reflect.ValueOf(&typ).Elem(), item+".type", getenv, known); err != nil {
			return err
		}
		if typ != "" && typ != ch.Type {
			ch.Type, ch.Settings = typ, nil
		}
		if t, ok := channelTypes[ch.Type]; ok && ch.Settings == nil {
			ch.Settings = t.config()
		}
		if ch.Settings == nil {
			continue // an unknown type, reported by Validate
		}
		if err := envStruct(reflect.ValueOf(ch.Settings).Elem(), item, getenv, known); err != nil {
			return err
		}
	}
	return nil
}

func envLeaf(v reflect.Value, path string, getenv func(string) string, known map[string]bool) error {
	name := envName(path)
	known[name], known[name+"_FILE"] = true, true
	raw, ok, err := envValue(name, getenv)
	if err != nil || !ok {
		return err
	}
	if err := setLeaf(v, raw); err != nil {
		return fmt.Errorf("config: %s: %w", name, err)
	}
	return nil
}

// envValue reads NAME, or the file named by NAME_FILE.
func envValue(name string, getenv func(string) string) (string, bool, error) {
	if f := getenv(name + "_FILE"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", false, fmt.Errorf("config: %s_FILE: %w", name, err)
		}
		return strings.TrimRight(string(b), "\r\n"), true, nil
	}
	if s := getenv(name); s != "" {
		return s, true, nil
	}
	return "", false, nil
}

func setLeaf(v reflect.Value, raw string) error {
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(raw))
	}
	if v.Type() == durationType {
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("not a duration (like 90s, 10m, 1h): %q", raw)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer: %q", raw)
		}
		v.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return fmt.Errorf("not a number: %q", raw)
		}
		v.SetFloat(f)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("not a boolean: %q", raw)
		}
		v.SetBool(b)
	case reflect.Slice:
		var items []string
		for _, s := range strings.Split(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		v.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}

// unknownEnv reports PAIRINGD_ variables that are no key's.
func unknownEnv(names []string, known map[string]bool) error {
	var candidates []string
	for n := range known {
		candidates = append(candidates, n)
	}
	moved := map[string]string{}
	for old, why := range movedKeys {
		moved[envName(old)], moved[envName(old)+"_FILE"] = why, why
	}
	var errs []error
	sort.Strings(names)
	for _, name := range names {
		if !strings.HasPrefix(name, "PAIRINGD_") || known[name] || otherVariables[name] {
			continue
		}
		if why, ok := moved[name]; ok {
			errs = append(errs, fmt.Errorf("config: unknown environment variable %s (%s)", name, why))
		} else if near := nearest(name, candidates); near != "" {
			errs = append(errs, fmt.Errorf("config: unknown environment variable %s (did you mean %s?)", name, near))
		} else {
			errs = append(errs, fmt.Errorf("config: unknown environment variable %s", name))
		}
	}
	return errors.Join(errs...)
}

// unknownKeys reports keys of a YAML document that no section knows.
func unknownKeys(doc *yaml.Node) error {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	return errors.Join(checkNode(doc.Content[0], reflect.TypeOf(Config{}), "")...)
}

func checkNode(n *yaml.Node, t reflect.Type, path string) []error {
	switch {
	case t == channelsType && n.Kind == yaml.SequenceNode:
		var errs []error
		for i, item := range n.Content {
			var head struct {
				Type string `yaml:"type"`
			}
			_ = item.Decode(&head)
			if ct, ok := channelTypes[head.Type]; ok {
				errs = append(errs, checkMapping(item, reflect.TypeOf(ct.config()).Elem(), fmt.Sprintf("%s[%d]", path, i), "type")...)
			}
		}
		return errs
	case isSection(t) && n.Kind == yaml.MappingNode:
		return checkMapping(n, t, path, "")
	}
	return nil
}

func checkMapping(n *yaml.Node, t reflect.Type, path, extra string) []error {
	fields := map[string]reflect.Type{}
	siblings := []string{}
	for _, f := range yamlFields(t) {
		fields[f.key] = f.typ
		siblings = append(siblings, f.key)
	}
	var errs []error
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i].Value, n.Content[i+1]
		p := strings.TrimPrefix(path+"."+key, ".")
		if ft, ok := fields[key]; ok {
			errs = append(errs, checkNode(val, ft, p)...)
		} else if key != extra {
			errs = append(errs, unknownKey(p, key, val, siblings)...)
		}
	}
	return errs
}

// unknownKey says where a moved key went, or names the nearest sibling.
func unknownKey(path, key string, val *yaml.Node, siblings []string) []error {
	if why, ok := movedKeys[path]; ok {
		return []error{fmt.Errorf("unknown key %q (%s)", path, why)}
	}
	if val.Kind == yaml.MappingNode {
		var errs []error
		for old := range movedKeys {
			if strings.HasPrefix(old, path+".") {
				for i := 0; i+1 < len(val.Content); i += 2 {
					errs = append(errs, unknownKey(path+"."+val.Content[i].Value, val.Content[i].Value, val.Content[i+1], nil)...)
				}
				return errs
			}
		}
	}
	if near := nearest(key, siblings); near != "" {
		return []error{fmt.Errorf("unknown key %q (did you mean %q?)", path, strings.TrimSuffix(path, key)+near)}
	}
	return []error{fmt.Errorf("unknown key %q", path)}
}

// nearest is the candidate closest to s in edit distance, if it is close
// enough to be a misspelling.
func nearest(s string, candidates []string) string {
	best, bestDist := "", len(s)/3+2
	sort.Strings(candidates)
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
