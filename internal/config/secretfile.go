package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
)

// FileSuffix names the variable that gives a secret's value as a file:
// IKD_NATS_PASSWORD_FILE=/run/secrets/nats-password instead of
// IKD_NATS_PASSWORD. Containers get their secrets as files (compose secrets,
// mounted Kubernetes Secrets), and a value in a file stays out of the
// process environment and out of `docker inspect`.
const FileSuffix = "_FILE"

// readSecretFiles sets every field tagged `secret` (a password, a key, a DSN
// with its password) whose IKD_..._FILE variable is set to that file's
// contents, without the trailing newline editors and `echo` leave.
func readSecretFiles(cfg any) error {
	var errs []error
	eachField("", reflect.ValueOf(cfg), func(name string, f reflect.StructField, value reflect.Value) {
		if f.Tag.Get("secret") == "" || value.Kind() != reflect.String || !value.CanSet() {
			return
		}
		variable := Prefix + "_" + name
		path, ok := os.LookupEnv(variable + FileSuffix)
		if !ok {
			return
		}
		if os.Getenv(variable) != "" {
			errs = append(errs, fmt.Errorf("%s and %s%s are alternatives; set one", variable, variable, FileSuffix))
			return
		}
		b, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s%s: %w", variable, FileSuffix, err))
			return
		}
		value.SetString(strings.TrimRight(string(b), "\r\n"))
	})
	return errors.Join(errs...)
}
