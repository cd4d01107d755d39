package jsonx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// UnknownFieldError reports a key of a configuration file that matches no
// field of the config it is decoded into: most likely a misspelt key, which
// would otherwise be ignored and leave the field at its default.
type UnknownFieldError struct {
	// Config names the config being decoded, as the prefix of its errors:
	// "breaker: config".
	Config string
	// Field is the key as the file spells it; the key of a nested config's
	// field follows its parents' keys and a dot: "budget.windw".
	Field string
}

func (e *UnknownFieldError) Error() string {
	return fmt.Sprintf("%s: unknown field %q", e.Config, e.Field)
}

// DecodeConfig decodes the JSON value b into v, a pointer to the struct
// through which a Config's UnmarshalJSON decodes it (typically one that
// embeds a pointer to the Config, as an alias type without methods, and
// overrides some fields with JSON forms such as [Duration]).
//
// Unlike encoding/json's default, a key that matches no field of v is an
// error, whatever the caller's json.Decoder allows: it is an
// [*UnknownFieldError] naming config and the key. Keys match field names
// as encoding/json matches them, ignoring case ("FailureRate" sets the
// field tagged "failureRate"); fields tagged "-" have no key. null leaves v
// unchanged. Any other error is prefixed with config and ": ".
//
// An *UnknownFieldError coming from a nested config (see [InField]) is
// returned with config as its Config and the nested key's path kept.
func DecodeConfig(config string, b []byte, v any) error {
	// Report malformed JSON (including data after the value, possible when
	// UnmarshalJSON is called directly) as json.Unmarshal does, before
	// decoding anything: a json.Decoder would stop after the first value
	// and report an empty input as io.EOF.
	if err := json.Unmarshal(b, new(json.RawMessage)); err != nil {
		return fmt.Errorf("%s: %w", config, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	if u, ok := errors.AsType[*UnknownFieldError](err); ok {
		return &UnknownFieldError{Config: config, Field: u.Field}
	}
	if key, ok := unknownField(err); ok {
		return &UnknownFieldError{Config: config, Field: key}
	}
	return fmt.Errorf("%s: %w", config, err)
}

// unknownField returns the key named by err if err is the error with which
// a json.Decoder that disallows unknown fields rejects one.
//
// encoding/json has no error type for it, so its text is read: it has been
// `json: unknown field "key"` (the key quoted by %q) since Go 1.10, and a
// test pins it. Were it to change, the error would still fail the decode,
// prefixed but without an UnknownFieldError.
func unknownField(err error) (key string, ok bool) {
	quoted, ok := strings.CutPrefix(err.Error(), "json: unknown field ")
	if !ok {
		return "", false
	}
	key, uerr := strconv.Unquote(quoted)
	return key, uerr == nil
}

// InField returns err, the error of decoding the nested config under key,
// with key and a dot prepended to the Field of an [*UnknownFieldError], so
// that the enclosing config's [DecodeConfig] names the key from the top of
// the file. Other errors, and nil, are returned unchanged.
func InField(key string, err error) error {
	if u, ok := errors.AsType[*UnknownFieldError](err); ok {
		return &UnknownFieldError{Config: u.Config, Field: key + "." + u.Field}
	}
	return err
}
