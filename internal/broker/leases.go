package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The lease bucket holds the single-writer leases (internal/lease): one key
// per lease, whose value names its holder and which vanishes a TTL after the
// holder's last renewal. Only the admin creates it, with the streams.
const (
	LeaseBucket = "ikd_leases"
	// AggregatorLease is the key of the lease the writing aggregator holds.
	AggregatorLease = "aggregator"

	// leaseMarkerTTL is how long the bucket keeps the marker an expired
	// lease leaves: long enough to be seen, short enough not to pile up.
	leaseMarkerTTL = time.Minute
)

// LeaseBucketConfig is the lease bucket's configuration: file storage and
// the streams' replicas, so a lease survives what the events survive, and
// per-key TTLs, which each holder sets with its own lease TTL.
func LeaseBucketConfig(opt StreamOptions) jetstream.KeyValueConfig {
	opt = opt.withDefaults()
	return jetstream.KeyValueConfig{
		Bucket:      LeaseBucket,
		Description: "Single-writer leases: who may write to the warehouse now.",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    opt.Replicas,
		// Enables per-message TTLs (AllowMsgTTL) and says how long the
		// marker of an expired key stays.
		LimitMarkerTTL: leaseMarkerTTL,
	}
}

// ProvisionLeases makes the lease bucket exist with cfg. As for the streams,
// a bucket that already matches is left alone, so every role may call it
// once the admin has provisioned; creating or changing it needs the admin.
func ProvisionLeases(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) error {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	switch {
	case err == nil:
		status, serr := kv.Status(ctx)
		if serr != nil {
			return fmt.Errorf("look up lease bucket %s: %w", cfg.Bucket, serr)
		}
		if sameBucket(status.Config(), cfg) {
			return nil
		}
	case !errors.Is(err, jetstream.ErrBucketNotFound):
		return fmt.Errorf("look up lease bucket %s: %w", cfg.Bucket, err)
	}
	if _, err := js.CreateOrUpdateKeyValue(ctx, cfg); err != nil {
		return fmt.Errorf("provision lease bucket %s: %w%s", cfg.Bucket, err, provisionHint(err))
	}
	return nil
}

func sameBucket(got, want jetstream.KeyValueConfig) bool {
	return got.History == want.History && got.Storage == want.Storage && got.Replicas == want.Replicas &&
		got.LimitMarkerTTL == want.LimitMarkerTTL && got.TTL == want.TTL
}
