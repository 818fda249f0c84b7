// Package events publishes IVS's EventBridge events (stream state, stream health, recording
// state, limit breaches) in their exact envelope on a JetStream stream with a subject per
// detail-type and channel. It delivers them to signed webhooks through durable consumers, in
// order and once each across restarts, and lets an operator tail them from a terminal.
package events

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Detail-types, as IVS sends them to EventBridge.
const (
	StreamStateChange    = "IVS Stream State Change"
	StreamHealthChange   = "IVS Stream Health Change"
	RecordingStateChange = "IVS Recording State Change"
	LimitBreach          = "IVS Limit Breach"
)

// Source is the envelope's source field of every IVS event.
const Source = "aws.ivs"

// Event is the EventBridge envelope, field for field; consumers written for EventBridge rules
// parse it unchanged.
type Event struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// kinds maps detail-types to the subject token that carries them; short tokens keep subjects
// readable in `nats` tooling and in webhook filters.
var kinds = map[string]string{
	StreamStateChange:    "stream-state",
	StreamHealthChange:   "stream-health",
	RecordingStateChange: "recording-state",
	LimitBreach:          "limit-breach",
}

// Kind returns the subject token of a detail-type ("" when it is not an IVS detail-type).
func Kind(detailType string) string { return kinds[detailType] }

// DetailTypeOf returns the detail-type of a subject token or of a detail-type itself.
func DetailTypeOf(s string) (string, bool) {
	for dt, k := range kinds {
		if s == k || s == dt {
			return dt, true
		}
	}
	return "", false
}

// accountToken stands for "no channel" in subjects: account-wide limit breaches.
const accountToken = "_account"

// StreamChange is a stream state or health change as the ingest sees it.
type StreamChange struct {
	DetailType  string // StreamStateChange or StreamHealthChange
	Name        string // event_name: "Session Created", "Stream Start", "Starvation Start", ...
	ChannelID   string
	ChannelName string
	StreamID    string
	Code        string // Session Ended's or a transcoder failure's code
	Reason      string // Stream Failure's reason
	AdBreakID   string // Ad Break Start's InsertAdBreak id (Glasscast's own event name)
	Time        time.Time
}

// RecordingChange is a recording state change as the archive sees it.
type RecordingChange struct {
	Status      string // recording_status: "Recording Start", "Recording End", ...
	ChannelID   string
	ChannelName string
	StreamID    string
	StreamIDs   []string // recording_session_stream_ids, on End events
	Reason      string
	Bucket      string
	Prefix      string
	DurationMS  int64
	RecordingID string
	Time        time.Time
}

// LimitChange is a limit breach; ChannelID is empty for account-wide limits.
type LimitChange struct {
	LimitName   string // "Ingest Bitrate", "Ingest Resolution", "Concurrent Broadcasts", "Concurrent Viewers"
	LimitValue  int64
	ExceededBy  int64
	LimitUnit   string
	ChannelID   string
	ChannelName string
	StreamID    string
	Time        time.Time
}

// Envelope builds events for one deployment's region and account.
type Envelope struct {
	Region  string
	Account string
}

func (e Envelope) channelARN(id string) string {
	return fmt.Sprintf("arn:aws:ivs:%s:%s:channel/%s", e.Region, e.Account, id)
}

func (e Envelope) wrap(detailType, channelID string, t time.Time, detail any) (Event, error) {
	b, err := json.Marshal(detail)
	if err != nil {
		return Event{}, fmt.Errorf("event detail: %w", err)
	}
	if t.IsZero() {
		t = time.Now()
	}
	ev := Event{Version: "0", ID: uuid.NewString(), DetailType: detailType, Source: Source, Account: e.Account,
		Time: t.UTC().Format(time.RFC3339), Region: e.Region, Resources: []string{}, Detail: b}
	if channelID != "" {
		ev.Resources = []string{e.channelARN(channelID)}
	}
	return ev, nil
}

// Stream builds an IVS Stream State Change or Stream Health Change event.
func (e Envelope) Stream(c StreamChange) (Event, error) {
	if Kind(c.DetailType) == "" || c.DetailType == RecordingStateChange || c.DetailType == LimitBreach {
		return Event{}, fmt.Errorf("%q is not a stream detail-type", c.DetailType)
	}
	d := struct {
		EventName   string `json:"event_name"`
		ChannelName string `json:"channel_name"`
		StreamID    string `json:"stream_id"`
		Code        string `json:"code,omitempty"`
		Reason      string `json:"reason,omitempty"`
		AdBreakID   string `json:"ad_break_id,omitempty"`
	}{c.Name, c.ChannelName, c.StreamID, c.Code, c.Reason, c.AdBreakID}
	return e.wrap(c.DetailType, c.ChannelID, c.Time, d)
}

// Recording builds an IVS Recording State Change event (recording_status, no event_name).
func (e Envelope) Recording(c RecordingChange) (Event, error) {
	d := struct {
		ChannelName   string    `json:"channel_name"`
		StreamID      string    `json:"stream_id"`
		Status        string    `json:"recording_status"`
		Reason        string    `json:"recording_status_reason"`
		Bucket        string    `json:"recording_s3_bucket_name"`
		Prefix        string    `json:"recording_s3_key_prefix"`
		DurationMS    int64     `json:"recording_duration_ms"`
		SessionID     string    `json:"recording_session_id"`
		SessionStream *[]string `json:"recording_session_stream_ids,omitempty"`
	}{c.ChannelName, c.StreamID, c.Status, c.Reason, c.Bucket, c.Prefix, c.DurationMS, c.RecordingID, nil}
	if c.Status == "Recording End" || c.Status == "Recording End Failure" {
		ids := append([]string{}, c.StreamIDs...)
		d.SessionStream = &ids
	}
	return e.wrap(RecordingStateChange, c.ChannelID, c.Time, d)
}

// Limit builds an IVS Limit Breach event.
func (e Envelope) Limit(c LimitChange) (Event, error) {
	d := struct {
		LimitName   string `json:"limit_name"`
		LimitValue  int64  `json:"limit_value"`
		ExceededBy  int64  `json:"exceeded_by"`
		LimitUnit   string `json:"limit_unit"`
		ChannelName string `json:"channel_name,omitempty"`
		StreamID    string `json:"stream_id,omitempty"`
	}{c.LimitName, c.LimitValue, c.ExceededBy, c.LimitUnit, c.ChannelName, c.StreamID}
	return e.wrap(LimitBreach, c.ChannelID, c.Time, d)
}

// ChannelID returns the channel an event concerns: the id at the end of its resource ARN.
func (ev Event) ChannelID() string {
	for _, r := range ev.Resources {
		for i := len(r) - 1; i >= 0; i-- {
			if r[i] == '/' {
				return r[i+1:]
			}
		}
	}
	return ""
}
