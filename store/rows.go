package store

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// A row struct (models.go and the files of each table) names each field's
// column once, in a `db` tag. columnsOf gives the column list a SELECT or
// RETURNING names, and fieldsOf the scan targets in the same order, both
// derived from the tags once per type.

var rowColumns sync.Map // reflect.Type -> "id, person_id, ..."

// columnsOf lists T's columns in field order, each prefixed with alias
// (as in "d.").
func columnsOf[T any](alias string) string {
	t := reflect.TypeFor[T]()
	cols, ok := rowColumns.Load(t)
	if !ok {
		names := make([]string, t.NumField())
		for i := range names {
			if names[i] = t.Field(i).Tag.Get("db"); names[i] == "" {
				panic(fmt.Sprintf("store: %s.%s has no db tag", t.Name(), t.Field(i).Name))
			}
		}
		cols, _ = rowColumns.LoadOrStore(t, strings.Join(names, ", "))
	}
	if alias == "" {
		return cols.(string)
	}
	return alias + strings.ReplaceAll(cols.(string), ", ", ", "+alias)
}

// fieldsOf returns pointers to row's fields, in the order of columnsOf.
func fieldsOf[T any](row *T) []any {
	v := reflect.ValueOf(row).Elem()
	out := make([]any, v.NumField())
	for i := range out {
		out[i] = v.Field(i).Addr().Interface()
	}
	return out
}

// converted is rows, each made into what pairing sees by conv, or err
// when the query failed.
func converted[R, T any](rows []R, err error, conv func(R) T) ([]T, error) {
	if err != nil {
		return nil, err
	}
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = conv(r)
	}
	return out, nil
}

// getConverted reads one R (getRow) and makes it into what pairing sees
// by conv. No row is pairing.ErrNotFound.
func getConverted[R, T any](ctx context.Context, r repo, db conn, conv func(R) T, query string, args ...any) (T, error) {
	row, err := getRow[R](ctx, r, db, query, args...)
	if err != nil {
		var zero T
		return zero, err
	}
	return conv(row), nil
}
