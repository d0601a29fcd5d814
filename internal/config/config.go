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
// environment, defaults first, and refuses values that would break the
// program (see Validate).
func Load(cfg any) error {
	if err := envconfig.Process(Prefix, cfg); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if err := readSecretFiles(cfg); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	return Validate(cfg)
}

// Log prints cfg as one line of fields. A field tagged `secret:"true"` is
// masked; any other value holding a URL, whatever its tag, shows only its
// scheme and hosts (see RedactURL).
func Log(logger *slog.Logger, program string, cfg any) {
	attrs := []any{"program", program}
	walk("", reflect.ValueOf(cfg), func(name string, value string) { attrs = append(attrs, name, value) })
	logger.Info("configuration", attrs...)
}

func walk(prefix string, v reflect.Value, emit func(name string, value string)) {
	eachField(prefix, v, func(name string, f reflect.StructField, fv reflect.Value) {
		value := fmt.Sprint(fv.Interface())
		if f.Tag.Get("secret") == "true" && value != "" {
			value = masked
		} else {
			// A URL may carry a password or token whatever its tag says.
			value = RedactURL(value)
		}
		emit(Prefix+"_"+name, value)
	})
}

// eachField calls visit with every variable of the struct v points to: its
// name without the IKD_ prefix, its field and its value, named as envconfig
// names them.
func eachField(prefix string, v reflect.Value, visit func(name string, f reflect.StructField, value reflect.Value)) {
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			// envconfig gives an embedded struct's fields no prefix of their own.
			eachField(prefix, v.Field(i), visit)
			continue
		}
		name := f.Tag.Get("envconfig")
		if name == "" {
			name = strings.ToUpper(f.Name)
		}
		name = prefix + name
		if f.Type.Kind() == reflect.Struct && f.Type.String() != "time.Time" {
			eachField(name+"_", v.Field(i), visit)
			continue
		}
		visit(name, f, v.Field(i))
	}
}

// masked stands for what was hidden.
const masked = "xxxxx"

// RedactURL returns s with every URL in it (scheme://...) cut down to its
// scheme and host: user information becomes xxxxx, since a NATS token or a
// password sits there, and a path, query or fragment becomes /xxxxx, since a
// webhook's token sits there (https://hooks.example/services/T0/B0/secret,
// ?token=...). Comma-separated URLs, as NATS takes them, are each cut down.
// Text without "://" is returned as it is.
func RedactURL(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = redactOne(p)
	}
	return strings.Join(parts, ",")
}

// RedactDSN is RedactURL, under the name the warehouse's callers know.
func RedactDSN(dsn string) string { return RedactURL(dsn) }

func redactOne(s string) string {
	lead := s[:len(s)-len(strings.TrimLeft(s, " "))]
	scheme, rest, ok := strings.Cut(strings.TrimSpace(s), "://")
	if !ok {
		return s
	}
	// The authority ends at the first '/', '?' or '#'; whatever follows
	// may hold a token.
	end := strings.IndexAny(rest, "/?#")
	authority, tail := rest, ""
	if end >= 0 {
		authority, tail = rest[:end], rest[end:]
	}
	// The last '@' ends the user information: a password may hold '@'.
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		authority = masked + "@" + authority[at+1:]
	}
	if tail != "" && tail != "/" {
		tail = "/" + masked
	}
	return lead + scheme + "://" + authority + tail
}
