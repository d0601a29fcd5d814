package config

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Validator is a configuration struct that can tell whether its own values
// would break the program. Load calls it on the configuration and on every
// named struct field inside it (an embedded struct's Validate is promoted to
// the struct that embeds it, which must call it when it has its own).
type Validator interface {
	Validate() error
}

// FieldError says what is wrong with one field of a configuration struct.
// Validate methods name the Go field; Load names its variable (IKD_...).
type FieldError struct {
	Field   string // the Go field name in the struct whose Validate refused it
	Problem string
	name    string // the variable, once Load knows it
}

func (e *FieldError) Error() string {
	if e.name != "" {
		return e.name + ": " + e.Problem
	}
	return e.Field + ": " + e.Problem
}

// Invalid reports field's value as wrong for the reason given.
func Invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// AtLeast refuses an integer below least.
func AtLeast(field string, value, least int) error {
	if value < least {
		return Invalid(field, "must be at least %d, got %d", least, value)
	}
	return nil
}

// Positive refuses a duration that is zero or negative.
func Positive(field string, d time.Duration) error {
	if d <= 0 {
		return Invalid(field, "must be a positive duration, got %s", d)
	}
	return nil
}

// NotNegative refuses a negative duration.
func NotNegative(field string, d time.Duration) error {
	if d < 0 {
		return Invalid(field, "must not be negative, got %s", d)
	}
	return nil
}

// Between refuses a number outside [low, high].
func Between(field string, value, low, high float64) error {
	if value < low || value > high {
		return Invalid(field, "must be between %v and %v, got %v", low, high, value)
	}
	return nil
}

// NotEmpty refuses an empty string.
func NotEmpty(field, value string) error {
	if strings.TrimSpace(value) == "" {
		return Invalid(field, "must not be empty")
	}
	return nil
}

// URL refuses a value that is not an absolute URL with a host and one of
// schemes. The value is repeated in the error cut down by RedactURL: it may
// hold a password or a token.
func URL(field, value string, schemes ...string) error {
	u, err := url.Parse(value)
	if err != nil {
		return Invalid(field, "not a URL: %v", RedactDSN(err.Error()))
	}
	if !slices.Contains(schemes, u.Scheme) || u.Host == "" {
		return Invalid(field, "must be a %s URL with a host, got %q", strings.Join(schemes, " or "), RedactURL(value))
	}
	return nil
}

// URLs refuses a comma-separated list of URLs (a NATS cluster) of which one
// is not a URL that URL accepts.
func URLs(field, value string, schemes ...string) error {
	for _, one := range strings.Split(value, ",") {
		if err := URL(field, strings.TrimSpace(one), schemes...); err != nil {
			return err
		}
	}
	return nil
}

// NatsSchemes are the schemes of a NATS server URL.
var NatsSchemes = []string{"nats", "tls", "ws", "wss"}

// Validate runs every Validate method of cfg and of the struct fields
// inside it, and names each refused field by its variable.
func Validate(cfg any) error {
	v := reflect.ValueOf(cfg)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("configuration: validate wants a pointer to a struct, got %T", cfg)
	}
	if err := validate("", v.Elem()); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	return nil
}

func validate(prefix string, v reflect.Value) error {
	errs := []error{nested(prefix, v)}
	if val, ok := v.Addr().Interface().(Validator); ok {
		if err := val.Validate(); err != nil {
			errs = append(errs, name(prefix, v.Type(), err))
		}
	}
	return errors.Join(errs...)
}

// nested validates the named struct fields of v, also those of a struct v
// embeds, whose own Validate is v's by promotion.
func nested(prefix string, v reflect.Value) error {
	var errs []error
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Type.Kind() != reflect.Struct || f.Type == reflect.TypeFor[time.Time]() {
			continue
		}
		if f.Anonymous {
			errs = append(errs, nested(prefix, v.Field(i)))
			continue
		}
		errs = append(errs, validate(prefix+envName(f)+"_", v.Field(i)))
	}
	return errors.Join(errs...)
}

// name gives every FieldError in err the variable of its field.
func name(prefix string, t reflect.Type, err error) error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var errs []error
		for _, e := range joined.Unwrap() {
			errs = append(errs, name(prefix, t, e))
		}
		return errors.Join(errs...)
	}
	var fe *FieldError
	if errors.As(err, &fe) && fe.name == "" {
		if f, ok := t.FieldByName(fe.Field); ok {
			named := *fe
			named.name = Prefix + "_" + prefix + envName(f)
			return &named
		}
	}
	return err
}

func envName(f reflect.StructField) string {
	if name := f.Tag.Get("envconfig"); name != "" {
		return name
	}
	return strings.ToUpper(f.Name)
}
