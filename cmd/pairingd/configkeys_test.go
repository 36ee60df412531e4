package main

import (
	"reflect"
	"strings"
)

// walkKeys calls fn with the yaml path of every leaf key of Config, the
// keys of each channel type under "channels[N]".
func walkKeys(fn func(string)) {
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for _, f := range yamlFields(t) {
			path := strings.TrimPrefix(prefix+"."+f.key, ".")
			switch {
			case f.typ == channelsType:
				fn(path + "[N].type")
				for _, name := range channelTypeNames() {
					walk(reflect.TypeOf(channelTypes[name].config()).Elem(), path+"[N]")
				}
			case isSection(f.typ):
				walk(f.typ, path)
			default:
				fn(path)
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "")
}
