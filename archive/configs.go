package archive

import (
	"context"
	"errors"
	"fmt"
	"time"

	"glasscast/archive/bucket"
	"glasscast/store"
)

// Recording configuration states.
const (
	stateCreating     = "CREATING"
	stateActive       = "ACTIVE"
	stateCreateFailed = "CREATE_FAILED"
)

// createDeadline is how long a new configuration's bucket may stay unreachable before the
// configuration fails, as IVS settles within "a few seconds, up to 20 s".
const createDeadline = 20 * time.Second

// watchConfigs moves recording configurations from CREATING to ACTIVE once their bucket
// answers, or to CREATE_FAILED with the reason. The archive does it because it is the role
// that holds the S3 configuration.
func (a *Archive) watchConfigs(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		for _, it := range a.st.RecordingConfigs.List() {
			if it.Value.State == stateCreating {
				a.settle(ctx, it.Value)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-a.st.RecordingConfigs.Changed():
		case <-tick.C:
		}
	}
}

// settle checks one CREATING configuration's bucket and records the outcome.
func (a *Archive) settle(ctx context.Context, rc store.RecordingConfiguration) {
	state, reason := stateActive, ""
	bkt, err := a.cfg.Buckets.Open(rc.BucketName)
	if err == nil {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = bkt.Check(cctx)
		cancel()
	}
	switch {
	case err == nil:
	case bucket.IsPermanent(err):
		state, reason = stateCreateFailed, err.Error()
	case time.Since(rc.CreatedAt) > createDeadline:
		state, reason = stateCreateFailed, fmt.Sprintf("bucket unreachable for %v: %v", createDeadline, err)
	default:
		a.log.Debug("recording configuration's bucket not reachable yet", "config", rc.ID, "err", err)
		return
	}
	_, err = a.st.RecordingConfigs.Update(ctx, rc.ID, func(c *store.RecordingConfiguration) error {
		if c.State != stateCreating {
			return errSettled
		}
		c.State, c.StateReason = state, reason
		return nil
	})
	switch {
	case err == nil:
		if state == stateActive {
			a.log.Info("recording configuration active", "config", rc.ID, "bucket", rc.BucketName)
		} else {
			a.log.Warn("recording configuration failed", "config", rc.ID, "bucket", rc.BucketName, "reason", reason)
		}
	case !errors.Is(err, errSettled) && !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil:
		a.log.Warn("update recording configuration state", "config", rc.ID, "err", err)
	}
}

var errSettled = errors.New("already settled")
