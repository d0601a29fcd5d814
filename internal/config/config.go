// Package config loads a program's configuration from IKD_* environment
// variables and prints it, secrets masked, so that every start says what it
// runs with.
package config

import (
	"fmt"
	"log/slog"
	"reflect"
	"strings"

	"github.com/kelseyhightower/envconfig"
)

// Prefix of every variable: IKD_NATS_URL, IKD_CLICKHOUSE_DSN, ...
const Prefix = "IKD"

// Load fills cfg (a pointer to a struct with envconfig tags) from the
// environment, defaults first.
func Load(cfg any) error {
	if err := envconfig.Process(Prefix, cfg); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	return nil
}

// Log prints cfg as one line of fields. A field tagged `secret:"true"` is
// masked; one tagged `secret:"dsn"` keeps all but its password.
func Log(logger *slog.Logger, program string, cfg any) {
	attrs := []any{"program", program}
	walk("", reflect.ValueOf(cfg), func(name string, value string) { attrs = append(attrs, name, value) })
	logger.Info("configuration", attrs...)
}

func walk(prefix string, v reflect.Value, emit func(name, value string)) {
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			// envconfig gives an embedded struct's fields no prefix of their own.
			walk(prefix, v.Field(i), emit)
			continue
		}
		name := f.Tag.Get("envconfig")
		if name == "" {
			name = strings.ToUpper(f.Name)
		}
		name = prefix + name
		if f.Type.Kind() == reflect.Struct && f.Type.String() != "time.Time" {
			walk(name+"_", v.Field(i), emit)
			continue
		}
		value := fmt.Sprint(v.Field(i).Interface())
		switch f.Tag.Get("secret") {
		case "true":
			if value != "" {
				value = "xxxxx"
			}
		case "dsn":
			value = RedactDSN(value)
		}
		emit(Prefix+"_"+name, value)
	}
}

// RedactDSN hides the password of scheme://user:password@host.
func RedactDSN(dsn string) string {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return dsn
	}
	creds, host, ok := strings.Cut(rest, "@")
	if !ok {
		return dsn
	}
	if user, _, hasPass := strings.Cut(creds, ":"); hasPass {
		creds = user + ":xxxxx"
	}
	return scheme + "://" + creds + "@" + host
}
