package main

import (
	"reflect"
	"strings"
)

// walkKeys calls fn with the yaml path of every leaf key of Config.
func walkKeys(fn func(string)) {
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			path := strings.TrimPrefix(prefix+"."+tag, ".")
			switch {
			case f.Type.Kind() == reflect.Struct && f.Type.String() != "time.Duration":
				walk(f.Type, path)
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				walk(f.Type.Elem(), path)
			default:
				fn(path)
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "")
}
