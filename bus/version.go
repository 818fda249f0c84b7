package bus

import (
	"fmt"
	"strconv"
	"strings"
)

// MinServerVersion is the oldest nats-server Glasscast runs on: 2.11.0 brought JetStream API
// level 1, with the per-message TTLs and limit markers the live-registration bucket needs
// (nats.go refuses KeyValueConfig.LimitMarkerTTL on older servers).
const MinServerVersion = "2.11.0"

// CheckServerVersion refuses a server older than MinServerVersion, naming both versions.
func CheckServerVersion(v string) error {
	got, ok := parseVersion(v)
	if !ok {
		return fmt.Errorf("unrecognized nats-server version %q; Glasscast needs nats-server %s or newer", v, MinServerVersion)
	}
	min, _ := parseVersion(MinServerVersion)
	for i := range got {
		if got[i] != min[i] {
			if got[i] < min[i] {
				return fmt.Errorf("nats-server %s is too old: Glasscast needs nats-server %s or newer (JetStream KV limit marker TTLs)", v, MinServerVersion)
			}
			return nil
		}
	}
	return nil
}

// parseVersion reads "2.11.0", "v2.11.0" or "2.12.0-RC.1" as major, minor and patch.
func parseVersion(v string) ([3]int, bool) {
	var out [3]int
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return out, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return out, false
		}
		out[i] = n
	}
	return out, true
}
