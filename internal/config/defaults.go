package config

import (
	"encoding"
	"fmt"
	"reflect"
	"strconv"
	"time"
)

// MustDefaults is a T with the `default` tags of its fields, whatever the
// environment holds: what a program runs with when nothing is set, so that
// the tags are the one place a default is written. Tags are constants, so a
// malformed one is a programming error and panics, as regexp.MustCompile does.
func MustDefaults[T any]() T {
	var cfg T
	if err := Defaults(&cfg); err != nil {
		panic(err)
	}
	return cfg
}

// Defaults sets every field of cfg (a pointer to a struct) that has a
// `default` tag to that default, parsed as envconfig parses a variable, and
// goes into nested structs as envconfig does.
func Defaults(cfg any) error {
	v := reflect.ValueOf(cfg)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("defaults: want a pointer to a struct, got %T", cfg)
	}
	return defaults(v.Elem())
}

func defaults(v reflect.Value) error {
	t := v.Type()
	for i := range t.NumField() {
		f, field := t.Field(i), v.Field(i)
		if !f.IsExported() {
			continue
		}
		def, tagged := f.Tag.Lookup("default")
		if !tagged {
			if f.Type.Kind() == reflect.Struct && !decodes(field) {
				if err := defaults(field); err != nil {
					return err
				}
			}
			continue
		}
		if err := set(field, def); err != nil {
			return fmt.Errorf("default of %s.%s %q: %w", t.Name(), f.Name, def, err)
		}
	}
	return nil
}

// decodes tells whether the field parses its own text, as time.Time does.
func decodes(field reflect.Value) bool {
	_, ok := field.Addr().Interface().(encoding.TextUnmarshaler)
	return ok
}

// set parses s into field the way envconfig does.
func set(field reflect.Value, s string) error {
	if u, ok := field.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(s))
	}
	if field.Type() == reflect.TypeFor[time.Duration]() {
		d, err := time.ParseDuration(s)
		if err == nil {
			field.SetInt(int64(d))
		}
		return err
	}
	switch field.Kind() {
	case reflect.String:
		field.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		field.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 0, field.Type().Bits())
		if err != nil {
			return err
		}
		field.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 0, field.Type().Bits())
		if err != nil {
			return err
		}
		field.SetUint(n)
	case reflect.Float32, reflect.Float64:
		x, err := strconv.ParseFloat(s, field.Type().Bits())
		if err != nil {
			return err
		}
		field.SetFloat(x)
	default:
		return fmt.Errorf("a default for a %s is not supported", field.Type())
	}
	return nil
}
