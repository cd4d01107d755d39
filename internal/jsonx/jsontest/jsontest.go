// Package jsontest checks, for the tests of every policy package, what
// each Config's JSON form promises: a misspelt key is an error that names
// it however the file is decoded, and whatever decodes survives a round
// trip.
package jsontest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall/internal/jsonx"
)

// UnknownField checks that decoding doc into a fresh T fails, by every
// route an operator's file may take (json.Unmarshal, T's UnmarshalJSON
// called directly, a json.Decoder with and without DisallowUnknownFields,
// and nested in a larger file), with the error text want, an
// *jsonx.UnknownFieldError for field. *T must implement json.Unmarshaler.
func UnknownField[T any](t *testing.T, doc, want, field string) {
	t.Helper()
	run := func(route string, err error) {
		t.Helper()
		require.Error(t, err, route)
		assert.Equal(t, want, err.Error(), route)
		u, ok := errors.AsType[*jsonx.UnknownFieldError](err)
		require.True(t, ok, "%s: %T is not an *UnknownFieldError", route, err)
		assert.Equal(t, field, u.Field, route)
	}
	var v T
	run("json.Unmarshal", json.Unmarshal([]byte(doc), &v))
	run("UnmarshalJSON", any(&v).(json.Unmarshaler).UnmarshalJSON([]byte(doc)))
	for _, disallow := range []bool{false, true} {
		dec := json.NewDecoder(strings.NewReader(doc))
		if disallow {
			dec.DisallowUnknownFields()
		}
		run(fmt.Sprintf("Decoder, DisallowUnknownFields %v", disallow), dec.Decode(&v))
	}
	var file struct {
		Policies map[string]T `json:"policies"`
	}
	run("in a file", json.Unmarshal([]byte(`{"policies":{"db":`+doc+`}}`), &file))
}

// Decode decodes b into a T as a fuzz target does, and fails t unless:
// decoding with T's UnmarshalJSON and with json.Unmarshal agree; an error
// starts with prefix ("breaker: config: "); and a decoded value marshals
// and unmarshals to an equal one. It returns the value, and whether b
// decoded. *T must implement json.Unmarshaler.
func Decode[T any](t *testing.T, prefix string, b []byte) (T, bool) {
	t.Helper()
	var v, viaJSON T
	err := any(&v).(json.Unmarshaler).UnmarshalJSON(b)
	errJSON := json.Unmarshal(b, &viaJSON)
	if (err == nil) != (errJSON == nil) {
		t.Fatalf("%q: UnmarshalJSON: %v; json.Unmarshal: %v", b, err, errJSON)
	}
	if err != nil {
		if !strings.HasPrefix(err.Error(), prefix) {
			t.Fatalf("%q: error %q lacks the prefix %q", b, err, prefix)
		}
		return v, false
	}
	if !reflect.DeepEqual(v, viaJSON) {
		t.Fatalf("%q: UnmarshalJSON gave %+v, json.Unmarshal %+v", b, v, viaJSON)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%q decoded to %+v, which does not marshal: %v", b, v, err)
	}
	var back T
	if err := json.Unmarshal(out, &back); err != nil || !reflect.DeepEqual(back, v) {
		t.Fatalf("%q decoded to %+v, marshalled to %s, decoded to %+v, %v", b, v, out, back, err)
	}
	return v, true
}

// Decodes checks that doc decodes to want both through json.Unmarshal and
// through a json.Decoder that disallows unknown fields.
func Decodes[T any](t *testing.T, doc string, want T) {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal([]byte(doc), &v))
	assert.Equal(t, want, v)
	v = *new(T)
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&v))
	assert.Equal(t, want, v)
}
