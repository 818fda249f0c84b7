// Package metrics measures what IVS reports to CloudWatch (namespace AWS/IVS) and exposes it as
// Prometheus metrics with stable names. It keeps per-second, per-minute, 5-minute and hourly
// aggregates in JetStream streams aged like CloudWatch's retention tiers, which the control
// API's GetMetricData reads.
package metrics

// Namespace is the CloudWatch namespace of IVS metrics.
const Namespace = "AWS/IVS"

// Metric names of reference/ivs-recording-events.md §7.
const (
	ConcurrentViews    = "ConcurrentViews"
	ConcurrentStreams  = "ConcurrentStreams"
	IngestAudioBitrate = "IngestAudioBitrate"
	IngestBitrate      = "IngestBitrate"
	IngestFramerate    = "IngestFramerate"
	IngestVideoBitrate = "IngestVideoBitrate"
	KeyframeInterval   = "KeyframeInterval"
	LiveDeliveredTime  = "LiveDeliveredTime"
	LiveInputTime      = "LiveInputTime"
	RecordedTime       = "RecordedTime"
)

// Dimension names.
const (
	DimChannel     = "Channel"
	DimTrack       = "Track"
	DimHealth      = "Health"
	DimCountryCode = "ViewerCountryCode"
)

// Definition describes one metric as CloudWatch publishes it.
type Definition struct {
	Name string
	Unit string
	// DimensionSets lists the accepted dimension name sets; an empty set is the account-wide
	// series.
	DimensionSets [][]string
	// HighResolution metrics have 1-second data; the others are meant at 60 s and above.
	HighResolution bool
}

// Definitions returns §7's table.
func Definitions() []Definition {
	none, ch := []string{}, []string{DimChannel}
	chTrack := []string{DimChannel, DimTrack}
	return []Definition{
		{ConcurrentViews, "Count", [][]string{none, ch}, false},
		{ConcurrentStreams, "Count", [][]string{none, {DimHealth}}, false},
		{IngestAudioBitrate, "Bits/Second", [][]string{ch, chTrack}, true},
		{IngestBitrate, "Bits/Second", [][]string{none, ch}, true},
		{IngestFramerate, "Count/Second", [][]string{none, ch, chTrack}, true},
		{IngestVideoBitrate, "Bits/Second", [][]string{ch, chTrack}, true},
		{KeyframeInterval, "Seconds", [][]string{ch, chTrack}, true},
		{LiveDeliveredTime, "Seconds", [][]string{none, ch, {DimChannel, DimCountryCode}}, false},
		{LiveInputTime, "Seconds", [][]string{none, ch}, false},
		{RecordedTime, "Seconds", [][]string{none, ch}, false},
	}
}

// Lookup returns a metric's definition.
func Lookup(name string) (Definition, bool) {
	for _, d := range Definitions() {
		if d.Name == name {
			return d, true
		}
	}
	return Definition{}, false
}

// Health values of ConcurrentStreams' Health dimension (IVS's StreamHealth enum).
func healthValues() []string { return []string{"HEALTHY", "STARVING", "UNKNOWN"} }

// trackName is the one track of a single-track stream, as IVS names it.
const trackName = "Track0"

// unknownCountry is the only ViewerCountryCode Glasscast knows: it does no geolocation.
const unknownCountry = "UNKNOWN"
