package observe

import (
	"net"
	"strconv"

	"github.com/ikd-pipeline/ikd/internal/config"
)

// ValidateListen refuses a metrics address that is not host:port with an
// explicit host: loopback by default, or an address named on purpose (such
// as 0.0.0.0:9411 in a container). A bare ":9411" would listen on every
// interface without anyone having said so.
func ValidateListen(field, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return config.Invalid(field, "must be host:port, such as 127.0.0.1:9411, got %q", addr)
	}
	if host == "" {
		return config.Invalid(field, "must name its host (127.0.0.1, or 0.0.0.0 on purpose), got %q", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return config.Invalid(field, "port must be a number up to 65535, got %q", addr)
	}
	return nil
}
