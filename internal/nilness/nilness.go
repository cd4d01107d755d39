// Package nilness tells a nil pointer inside an interface from a value,
// for the options that take a limiter by interface: a nil *Limiter of any
// package (ratelimit, redisrate) is as missing as a nil interface.
package nilness

import "reflect"

// Is reports whether v is nil, or a nil pointer, map, slice, channel or
// function in an interface.
func Is(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Chan, reflect.Func, reflect.Interface:
		return rv.IsNil()
	}
	return false
}
