package control

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"glasscast/ingestctl"
	"glasscast/metadata"
	"glasscast/store"
)

func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// live returns a channel's registration if it is on air and playable. Entries whose heartbeat
// stopped are treated as gone even before the bucket expires them.
func (s *Server) live(channelID string) (store.Live, bool) {
	l, ok := s.store.Live.Get(channelID)
	if !ok || !l.Playable || time.Since(l.UpdatedAt) > store.LiveTTL {
		return store.Live{}, false
	}
	return l, true
}

type streamJSON struct {
	ChannelArn  string `json:"channelArn"`
	StreamID    string `json:"streamId"`
	PlaybackURL string `json:"playbackUrl,omitempty"`
	StartTime   string `json:"startTime"`
	State       string `json:"state"`
	Health      string `json:"health"`
	ViewerCount int64  `json:"viewerCount"`
}

func (s *Server) streamOut(r *request, l store.Live, withURL bool) streamJSON {
	out := streamJSON{ChannelArn: s.channelARN(l.ChannelID), StreamID: l.StreamID, StartTime: isoTime(l.StartTime),
		State: "LIVE", Health: l.Health, ViewerCount: s.viewers(l.ChannelID)}
	if out.Health == "" {
		out.Health = "UNKNOWN"
	}
	if withURL {
		out.PlaybackURL = s.playbackURL(r, l.ChannelID)
	}
	return out
}

// liveChannel reads a {"channelArn"} body and returns the channel and its live registration,
// or ChannelNotBroadcasting.
func (s *Server) liveChannel(r *request) (store.Channel, store.Live, string, error) {
	var in struct{ ChannelArn *string }
	if err := decode(r.body, &in); err != nil {
		return store.Channel{}, store.Live{}, "", err
	}
	if err := required("channelArn", in.ChannelArn != nil); err != nil {
		return store.Channel{}, store.Live{}, "", err
	}
	c, err := s.channelByARN("channelArn", *in.ChannelArn)
	if err != nil {
		return store.Channel{}, store.Live{}, "", err
	}
	l, ok := s.live(c.ID)
	if !ok {
		return store.Channel{}, store.Live{}, "", errNotBroadcasting(*in.ChannelArn)
	}
	return c, l, *in.ChannelArn, nil
}

func (s *Server) getStream(ctx context.Context, r *request) (any, error) {
	_, l, _, err := s.liveChannel(r)
	if err != nil {
		return nil, err
	}
	return map[string]any{"stream": s.streamOut(r, l, true)}, nil
}

func (s *Server) listStreams(ctx context.Context, r *request) (any, error) {
	var in struct {
		FilterBy   *struct{ Health *string }
		NextToken  *string
		MaxResults *int
	}
	if err := decode(r.body, &in); err != nil {
		return nil, err
	}
	var health *string
	if in.FilterBy != nil {
		health = in.FilterBy.Health
	}
	if err := checkEnum("filterBy.health", health, "HEALTHY", "STARVING", "UNKNOWN"); err != nil {
		return nil, err
	}
	max, err := checkMaxResults(in.MaxResults, 100)
	if err != nil {
		return nil, err
	}
	lives, next, err := page(s.store.Live.List(), in.NextToken, max, func(l store.Live) bool {
		if _, ok := s.live(l.ChannelID); !ok {
			return false
		}
		if _, ok := s.store.Channels.Get(l.ChannelID); !ok {
			return false
		}
		return health == nil || *health == l.Health
	})
	if err != nil {
		return nil, err
	}
	out := make([]streamJSON, 0, len(lives))
	for _, l := range lives {
		out = append(out, s.streamOut(r, l, false))
	}
	return listResponse("streams", out, next), nil
}

func (s *Server) stopStream(ctx context.Context, r *request) (any, error) {
	c, _, channelArn, err := s.liveChannel(r)
	if err != nil {
		return nil, err
	}
	if err := s.broadcasts.Stop(ctx, c.ID); err != nil {
		return nil, s.broadcastError(channelArn, err)
	}
	return map[string]any{}, nil
}

func (s *Server) broadcastError(channelArn string, err error) error {
	switch {
	case errors.Is(err, ingestctl.ErrNotBroadcasting):
		return errNotBroadcasting(channelArn)
	case errors.Is(err, ingestctl.ErrThrottled):
		return errThrottled("too many PutMetadata calls for channel %s: at most %d per second", channelArn, metadata.RatePerSecond)
	case errors.Is(err, ingestctl.ErrAdBreakRunning):
		return errConflict("an ad break is already running on channel %s", channelArn)
	case errors.Is(err, ingestctl.ErrUnavailable):
		return errStreamUnavailable("the ingest holding channel %s did not answer", channelArn)
	}
	return fmt.Errorf("broadcast request for %s: %w", channelArn, err)
}

func (s *Server) putMetadata(ctx context.Context, r *request) (any, error) {
	var in struct {
		ChannelArn *string
		Metadata   *string
	}
	if err := decode(r.body, &in); err != nil {
		return nil, err
	}
	if err := required("channelArn", in.ChannelArn != nil); err != nil {
		return nil, err
	}
	if err := required("metadata", in.Metadata != nil); err != nil {
		return nil, err
	}
	switch m, err := *in.Metadata, metadata.Check(*in.Metadata); {
	case errors.Is(err, metadata.ErrEmpty):
		return nil, constraint("metadata", m, "Member must have length greater than or equal to 1")
	case errors.Is(err, metadata.ErrTooLarge):
		return nil, errValidation("1 validation error detected: Value at 'metadata' failed to satisfy constraint: Member must be at most %d bytes (got %d)", metadata.MaxBytes, len(m))
	case err != nil:
		return nil, errValidation("1 validation error detected: Value at 'metadata' failed to satisfy constraint: Member must be valid UTF-8")
	}
	c, err := s.channelByARN("channelArn", *in.ChannelArn)
	if err != nil {
		return nil, err
	}
	if _, ok := s.live(c.ID); !ok {
		return nil, errNotBroadcasting(*in.ChannelArn)
	}
	if err := s.broadcasts.PutMetadata(ctx, c.ID, *in.Metadata); err != nil {
		return nil, s.broadcastError(*in.ChannelArn, err)
	}
	return noContent{}, nil
}

type streamEventJSON struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	EventTime string `json:"eventTime"`
	Code      string `json:"code,omitempty"`
}

func (s *Server) sessionOut(r *request, ss store.Session) map[string]any {
	out := map[string]any{
		"streamId":  ss.StreamID,
		"startTime": isoTime(ss.StartTime),
		"channel":   s.sessionChannelOut(r, ss.Channel),
	}
	if ss.EndTime != nil {
		out["endTime"] = isoTime(*ss.EndTime)
	}
	if ic := ss.Ingest; ic != nil {
		cfg := map[string]any{}
		videos, audios := []any{}, []any{}
		if v := ic.Video; v != nil {
			vj := map[string]any{"codec": v.Codec, "avcProfile": v.Profile, "avcLevel": v.Level, "profile": v.Profile,
				"level": v.Level, "encoder": v.Encoder, "targetBitrate": v.TargetBitrate, "targetFramerate": v.TargetFramerate,
				"videoWidth": v.Width, "videoHeight": v.Height, "track": "Track0"}
			cfg["video"] = vj
			videos = append(videos, vj)
		}
		if a := ic.Audio; a != nil {
			aj := map[string]any{"codec": a.Codec, "targetBitrate": a.TargetBitrate, "sampleRate": a.SampleRate,
				"channels": a.Channels, "track": "Track0"}
			cfg["audio"] = aj
			audios = append(audios, aj)
		}
		out["ingestConfiguration"] = cfg
		out["ingestConfigurations"] = map[string]any{"videoConfigurations": videos, "audioConfigurations": audios}
	}
	if rc := ss.Recording; rc != nil {
		out["recordingConfiguration"] = s.recordingConfigOut(*rc, true)
	}
	// Stored oldest first; IVS answers newest first.
	events := make([]streamEventJSON, 0, len(ss.Events))
	for i := len(ss.Events) - 1; i >= 0; i-- {
		e := ss.Events[i]
		events = append(events, streamEventJSON{Name: e.Name, Type: e.Type, EventTime: isoTime(e.Time), Code: e.Code})
	}
	out["truncatedEvents"] = events
	return out
}

// channelSessions returns a channel's sessions, newest first, keyed so that key order is that
// order (pages stay stable while new sessions start).
func (s *Server) channelSessions(channelID string) []store.Item[store.Session] {
	var out []store.Item[store.Session]
	for _, it := range s.store.Sessions.List() {
		if it.Value.ChannelID != channelID {
			continue
		}
		key := fmt.Sprintf("%019d.%s", math.MaxInt64-it.Value.StartTime.UnixNano(), it.Value.StreamID)
		out = append(out, store.Item[store.Session]{Key: key, Value: it.Value, Revision: it.Revision})
	}
	slices.SortFunc(out, func(a, b store.Item[store.Session]) int { return strings.Compare(a.Key, b.Key) })
	return out
}

func (s *Server) getStreamSession(ctx context.Context, r *request) (any, error) {
	var in struct {
		ChannelArn *string
		StreamID   *string `json:"streamId"`
	}
	if err := decode(r.body, &in); err != nil {
		return nil, err
	}
	if err := required("channelArn", in.ChannelArn != nil); err != nil {
		return nil, err
	}
	if in.StreamID != nil && (len(*in.StreamID) != 26 || !reStreamID.MatchString(*in.StreamID)) {
		return nil, constraint("streamId", *in.StreamID, "Member must be 26 characters matching st-[a-zA-Z0-9]+")
	}
	c, err := s.channelByARN("channelArn", *in.ChannelArn)
	if err != nil {
		return nil, err
	}
	var ss store.Session
	var found bool
	if in.StreamID != nil {
		ss, found = s.store.Sessions.Get(store.SessionKey(c.ID, *in.StreamID))
	} else if all := s.channelSessions(c.ID); len(all) > 0 {
		ss, found = all[0].Value, true
	}
	if !found {
		return nil, errNotFound("no stream session found for channel %s", *in.ChannelArn)
	}
	return map[string]any{"streamSession": s.sessionOut(r, ss)}, nil
}

func (s *Server) listStreamSessions(ctx context.Context, r *request) (any, error) {
	c, tok, max, err := s.channelPage(r, 100)
	if err != nil {
		return nil, err
	}
	sessions, next, err := page(s.channelSessions(c.ID), tok, max, nil)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, 0, len(sessions))
	for _, ss := range sessions {
		sum := map[string]any{"streamId": ss.StreamID, "startTime": isoTime(ss.StartTime), "hasErrorEvent": hasError(ss)}
		if ss.EndTime != nil {
			sum["endTime"] = isoTime(*ss.EndTime)
		}
		out = append(out, sum)
	}
	return listResponse("streamSessions", out, next), nil
}

func hasError(ss store.Session) bool {
	for _, e := range ss.Events {
		if e.Type == "ERROR" || e.Name == "Stream Failure" || e.Name == "Recording Start Failure" || e.Name == "Recording End Failure" {
			return true
		}
	}
	return false
}

// sessionChannelOut is the channel as a stream session recorded it. Its SRT passphrase is left
// out: the session's history is no place for a secret the channel may have changed since.
func (s *Server) sessionChannelOut(r *request, c store.Channel) channelJSON {
	out := s.channelOut(r, c)
	if out.Srt != nil {
		out.Srt.Passphrase = ""
	}
	return out
}
