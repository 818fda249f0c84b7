package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"glasscast/auth"
	"glasscast/media"
	"glasscast/store"
)

// channelJSON is IVS's Channel shape.
type channelJSON struct {
	Arn                          string            `json:"arn"`
	Name                         string            `json:"name"`
	LatencyMode                  string            `json:"latencyMode"`
	Type                         string            `json:"type"`
	RecordingConfigurationArn    string            `json:"recordingConfigurationArn"`
	AdConfigurationArn           string            `json:"adConfigurationArn,omitempty"`
	IngestEndpoint               string            `json:"ingestEndpoint,omitempty"`
	PlaybackURL                  string            `json:"playbackUrl,omitempty"`
	Authorized                   bool              `json:"authorized"`
	Tags                         map[string]string `json:"tags"`
	InsecureIngest               bool              `json:"insecureIngest"`
	Preset                       string            `json:"preset"`
	PlaybackRestrictionPolicyArn string            `json:"playbackRestrictionPolicyArn"`
	ContainerFormat              string            `json:"containerFormat,omitempty"`
	MultitrackInputConfiguration *multitrackJSON   `json:"multitrackInputConfiguration,omitempty"`
	Srt                          *srtJSON          `json:"srt,omitempty"`
}

// srtJSON is IVS's Srt: where encoders publish over SRT, and the passphrase that encrypts it
// (only for channels that do not allow insecure ingest).
type srtJSON struct {
	Endpoint   string `json:"endpoint,omitempty"`
	Passphrase string `json:"passphrase,omitempty"`
}

type multitrackJSON struct {
	Enabled           *bool   `json:"enabled,omitempty"`
	Policy            *string `json:"policy,omitempty"`
	MaximumResolution *string `json:"maximumResolution,omitempty"`
}

func (s *Server) arn(service, typ, id string) string {
	return arn{Service: service, Region: s.cfg.Region, Account: s.cfg.Account, Type: typ, ID: id}.String()
}

func (s *Server) channelARN(id string) string { return s.arn("ivs", "channel", id) }

func (s *Server) playbackURL(r *request, id string) string {
	base := s.cfg.PlaybackBaseURL
	if base == "" {
		base = r.baseURL
	}
	return strings.TrimSuffix(base, "/") + media.MultivariantPath(s.cfg.Region, s.cfg.Account, id)
}

func (s *Server) channelOut(r *request, c store.Channel) channelJSON {
	ingest := s.cfg.IngestHost
	if ingest == "" {
		ingest = r.host
	}
	out := channelJSON{
		Arn: s.channelARN(c.ID), Name: c.Name, LatencyMode: c.LatencyMode, Type: c.Type,
		RecordingConfigurationArn: c.RecordingConfigurationArn, AdConfigurationArn: c.AdConfigurationArn, IngestEndpoint: ingest,
		PlaybackURL: s.playbackURL(r, c.ID), Authorized: c.Authorized, Tags: tagsOut(c.Tags),
		InsecureIngest: c.InsecureIngest, Preset: c.Preset,
		PlaybackRestrictionPolicyArn: c.PlaybackRestrictionPolicyArn, ContainerFormat: c.ContainerFormat,
	}
	if m := c.Multitrack; m != nil {
		out.MultitrackInputConfiguration = &multitrackJSON{Enabled: &m.Enabled, Policy: &m.Policy, MaximumResolution: &m.MaximumResolution}
	}
	out.Srt = &srtJSON{Endpoint: s.cfg.SRTEndpoint}
	if out.Srt.Endpoint == "" {
		out.Srt.Endpoint = ingest
		if p := s.cfg.SRTPort; p != "" && p != "9000" {
			out.Srt.Endpoint = net.JoinHostPort(ingest, p)
		}
	}
	if !c.InsecureIngest {
		out.Srt.Passphrase = c.SRTPassphrase
	}
	return out
}

func tagsOut(t map[string]string) map[string]string {
	if t == nil {
		return map[string]string{}
	}
	return t
}

// channelInput is what CreateChannel and UpdateChannel accept.
type channelInput struct {
	Arn                          *string           `json:"arn"`
	Name                         *string           `json:"name"`
	LatencyMode                  *string           `json:"latencyMode"`
	Type                         *string           `json:"type"`
	Authorized                   *bool             `json:"authorized"`
	RecordingConfigurationArn    *string           `json:"recordingConfigurationArn"`
	Tags                         map[string]string `json:"tags"`
	InsecureIngest               *bool             `json:"insecureIngest"`
	Preset                       *string           `json:"preset"`
	PlaybackRestrictionPolicyArn *string           `json:"playbackRestrictionPolicyArn"`
	MultitrackInputConfiguration *multitrackJSON   `json:"multitrackInputConfiguration"`
	ContainerFormat              *string           `json:"containerFormat"`
	AdConfigurationArn           *string           `json:"adConfigurationArn"`
}

func (s *Server) validateChannelInput(in *channelInput) error {
	if err := checkName("name", in.Name); err != nil {
		return err
	}
	if err := checkEnum("latencyMode", in.LatencyMode, "NORMAL", "LOW"); err != nil {
		return err
	}
	if err := checkEnum("type", in.Type, "BASIC", "STANDARD", "ADVANCED_SD", "ADVANCED_HD"); err != nil {
		return err
	}
	if err := checkEnum("preset", in.Preset, "HIGHER_BANDWIDTH_DELIVERY", "CONSTRAINED_BANDWIDTH_DELIVERY", ""); err != nil {
		return err
	}
	if err := checkEnum("containerFormat", in.ContainerFormat, "TS", "FRAGMENTED_MP4"); err != nil {
		return err
	}
	if in.RecordingConfigurationArn != nil && *in.RecordingConfigurationArn != "" {
		a, ok := parseARN(*in.RecordingConfigurationArn)
		if !ok || a.Type != "recording-configuration" || a.Service != "ivs" {
			return constraint("recordingConfigurationArn", *in.RecordingConfigurationArn, "Member must satisfy regular expression pattern: ^$|^arn:aws:ivs:[a-z0-9-]+:[0-9]+:recording-configuration/[a-zA-Z0-9-]+$")
		}
	}
	if in.PlaybackRestrictionPolicyArn != nil && *in.PlaybackRestrictionPolicyArn != "" {
		a, ok := parseARN(*in.PlaybackRestrictionPolicyArn)
		if !ok || a.Type != playbackPolicyType || a.Service != "ivs" {
			return constraint("playbackRestrictionPolicyArn", *in.PlaybackRestrictionPolicyArn, "Member must satisfy regular expression pattern: ^$|^arn:aws:ivs:[a-z0-9-]+:[0-9]+:playback-restriction-policy/[a-zA-Z0-9-]+$")
		}
	}
	if in.AdConfigurationArn != nil {
		if err := s.checkChannelAdConfig(*in.AdConfigurationArn, false); err != nil {
			return err
		}
	}
	if m := in.MultitrackInputConfiguration; m != nil {
		if err := checkEnum("multitrackInputConfiguration.policy", m.Policy, "ALLOW", "REQUIRE"); err != nil {
			return err
		}
		if err := checkEnum("multitrackInputConfiguration.maximumResolution", m.MaximumResolution, "SD", "HD", "FULL_HD"); err != nil {
			return err
		}
	}
	return checkTags("tags", in.Tags)
}

// applyChannelInput merges in into c and checks the combination, as IVS does after defaults.
func (s *Server) applyChannelInput(c *store.Channel, in *channelInput) error {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&c.Name, in.Name)
	set(&c.LatencyMode, in.LatencyMode)
	set(&c.Type, in.Type)
	set(&c.RecordingConfigurationArn, in.RecordingConfigurationArn)
	set(&c.PlaybackRestrictionPolicyArn, in.PlaybackRestrictionPolicyArn)
	set(&c.AdConfigurationArn, in.AdConfigurationArn)
	set(&c.ContainerFormat, in.ContainerFormat)
	if in.Authorized != nil {
		c.Authorized = *in.Authorized
	}
	if in.InsecureIngest != nil {
		c.InsecureIngest = *in.InsecureIngest
	}
	advanced := c.Type == "ADVANCED_SD" || c.Type == "ADVANCED_HD"
	switch {
	case in.Preset != nil && *in.Preset != "" && !advanced:
		return errValidation("preset can be set only for ADVANCED_SD and ADVANCED_HD channels")
	case in.Preset != nil:
		c.Preset = *in.Preset
	}
	if !advanced {
		c.Preset = ""
	} else if c.Preset == "" {
		c.Preset = "HIGHER_BANDWIDTH_DELIVERY"
	}
	if m := in.MultitrackInputConfiguration; m != nil {
		mt := &store.Multitrack{Policy: "ALLOW", MaximumResolution: "FULL_HD"}
		if m.Enabled != nil {
			mt.Enabled = *m.Enabled
		}
		set(&mt.Policy, m.Policy)
		set(&mt.MaximumResolution, m.MaximumResolution)
		c.Multitrack = mt
	}
	if c.Multitrack != nil && c.Multitrack.Enabled {
		if c.Type != "STANDARD" {
			return errValidation("multitrack input is available only for STANDARD channels")
		}
		if c.ContainerFormat != "FRAGMENTED_MP4" {
			return errValidation("multitrack input requires containerFormat FRAGMENTED_MP4")
		}
	}
	return s.checkChannelRefs(c, in)
}

// checkChannelRefs checks that the configurations in sets on c exist; callers hold s.refs until
// the channel is written. A reference in does not mention is left as it is and not checked, as
// in IVS: it may dangle after a delete on another node (see Server.refs) and must not then make
// every later UpdateChannel fail.
func (s *Server) checkChannelRefs(c *store.Channel, in *channelInput) error {
	if in.AdConfigurationArn != nil {
		if err := s.checkChannelAdConfig(c.AdConfigurationArn, true); err != nil {
			return err
		}
	}
	if in.RecordingConfigurationArn != nil && c.RecordingConfigurationArn != "" {
		a, _ := parseARN(c.RecordingConfigurationArn)
		if _, ok := s.store.RecordingConfigs.Get(a.ID); !ok || !s.ownARN(a) {
			return errNotFound("recording configuration %s not found", c.RecordingConfigurationArn)
		}
	}
	if in.PlaybackRestrictionPolicyArn != nil && c.PlaybackRestrictionPolicyArn != "" {
		a, _ := parseARN(c.PlaybackRestrictionPolicyArn)
		if _, ok := s.store.PlaybackPolicies.Get(a.ID); !ok || !s.ownARN(a) {
			return errNotFound("playback restriction policy %s not found", c.PlaybackRestrictionPolicyArn)
		}
	}
	return nil
}

// withRefs runs fn holding s.refs. fn must not call withRefs.
func (s *Server) withRefs(fn func() error) error {
	s.refs.Lock()
	defer s.refs.Unlock()
	return fn()
}

func (s *Server) ownARN(a arn) bool { return a.Region == s.cfg.Region && a.Account == s.cfg.Account }

// channelByARN resolves a channel ARN, answering ValidationException for a malformed one and
// ResourceNotFoundException for an unknown one.
func (s *Server) channelByARN(field, v string) (store.Channel, error) {
	return byARN(s, s.store.Channels, "channel", "channel", field, v)
}

func (s *Server) createChannel(ctx context.Context, r *request) (any, error) {
	var in channelInput
	if err := decode(r.body, &in); err != nil {
		return nil, err
	}
	if err := s.validateChannelInput(&in); err != nil {
		return nil, err
	}
	if q := s.cfg.Quotas.Channels; q > 0 && s.store.Channels.Len() >= q {
		return nil, errQuota("maximum number of channels (%d) reached", q)
	}
	c := store.Channel{ID: auth.NewID(), LatencyMode: "LOW", Type: "STANDARD", ContainerFormat: "FRAGMENTED_MP4",
		Tags: in.Tags, CreatedAt: time.Now().UTC(), SRTPassphrase: auth.NewSRTPassphrase()}
	// The first key is created with the channel, as IVS does: the key record and its value index
	// go first so that the channel never lists a key that does not exist.
	k := store.StreamKey{ID: auth.NewID(), ChannelID: c.ID, Value: auth.NewStreamKeyValue(s.cfg.Region), CreatedAt: c.CreatedAt}
	err := s.withRefs(func() error {
		if err := s.applyChannelInput(&c, &in); err != nil {
			return err
		}
		if err := s.putStreamKey(ctx, k); err != nil {
			return err
		}
		c.StreamKeys = []string{k.ID}
		if err := s.store.Channels.Create(ctx, c.ID, c); err != nil {
			// No channel lists the key: it would authorize nothing, but would stay forever.
			s.removeStreamKey(ctx, k)
			return fmt.Errorf("create channel: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"channel": s.channelOut(r, c), "streamKey": s.streamKeyOut(k, true)}, nil
}

func (s *Server) getChannel(ctx context.Context, r *request) (any, error) {
	resARN, err := arnArg(r)
	if err != nil {
		return nil, err
	}
	c, err := s.channelByARN("arn", resARN)
	if err != nil {
		return nil, err
	}
	return map[string]any{"channel": s.channelOut(r, c)}, nil
}

type batchError struct {
	Arn     string `json:"arn"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (s *Server) batchGetChannel(ctx context.Context, r *request) (any, error) {
	var in struct{ Arns []string }
	if err := decode(r.body, &in); err != nil {
		return nil, err
	}
	if len(in.Arns) < 1 || len(in.Arns) > 50 {
		return nil, errValidation("1 validation error detected: Value at 'arns' failed to satisfy constraint: Member must have length between 1 and 50")
	}
	channels, errs := []channelJSON{}, []batchError{}
	for _, a := range in.Arns {
		c, err := s.channelByARN("arns", a)
		if err != nil {
			ae := asAPIError(err)
			errs = append(errs, batchError{Arn: a, Code: ae.Code, Message: ae.Message})
			continue
		}
		channels = append(channels, s.channelOut(r, c))
	}
	return map[string]any{"channels": channels, "errors": errs}, nil
}

type channelSummary struct {
	Arn                          string            `json:"arn"`
	Name                         string            `json:"name"`
	LatencyMode                  string            `json:"latencyMode"`
	Authorized                   bool              `json:"authorized"`
	RecordingConfigurationArn    string            `json:"recordingConfigurationArn"`
	AdConfigurationArn           string            `json:"adConfigurationArn,omitempty"`
	Tags                         map[string]string `json:"tags"`
	InsecureIngest               bool              `json:"insecureIngest"`
	Type                         string            `json:"type"`
	Preset                       string            `json:"preset"`
	PlaybackRestrictionPolicyArn string            `json:"playbackRestrictionPolicyArn"`
}

func (s *Server) listChannels(ctx context.Context, r *request) (any, error) {
	var in struct {
		FilterByName                         *string
		FilterByRecordingConfigurationArn    *string
		FilterByPlaybackRestrictionPolicyArn *string
		FilterByAdConfigurationArn           *string
		NextToken                            *string
		MaxResults                           *int
	}
	if err := decode(r.body, &in); err != nil {
		return nil, err
	}
	if err := checkName("filterByName", in.FilterByName); err != nil {
		return nil, err
	}
	if in.FilterByName != nil && in.FilterByRecordingConfigurationArn != nil {
		return nil, errConflict("filterByName and filterByRecordingConfigurationArn cannot be used together")
	}
	max, err := checkMaxResults(in.MaxResults, 100)
	if err != nil {
		return nil, err
	}
	channels, next, err := page(s.store.Channels.List(), in.NextToken, max, func(c store.Channel) bool {
		// IVS matches filterByName as a prefix of the name.
		switch {
		case in.FilterByName != nil && !strings.HasPrefix(c.Name, *in.FilterByName):
			return false
		case in.FilterByRecordingConfigurationArn != nil && c.RecordingConfigurationArn != *in.FilterByRecordingConfigurationArn:
			return false
		case in.FilterByPlaybackRestrictionPolicyArn != nil && c.PlaybackRestrictionPolicyArn != *in.FilterByPlaybackRestrictionPolicyArn:
			return false
		case in.FilterByAdConfigurationArn != nil && *in.FilterByAdConfigurationArn != "":
			return false // no channel has an ad configuration
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	out := make([]channelSummary, 0, len(channels))
	for _, c := range channels {
		out = append(out, channelSummary{Arn: s.channelARN(c.ID), Name: c.Name, LatencyMode: c.LatencyMode,
			Authorized: c.Authorized, RecordingConfigurationArn: c.RecordingConfigurationArn, AdConfigurationArn: c.AdConfigurationArn, Tags: tagsOut(c.Tags),
			InsecureIngest: c.InsecureIngest, Type: c.Type, Preset: c.Preset, PlaybackRestrictionPolicyArn: c.PlaybackRestrictionPolicyArn})
	}
	return listResponse("channels", out, next), nil
}

func (s *Server) updateChannel(ctx context.Context, r *request) (any, error) {
	var in channelInput
	if err := decode(r.body, &in); err != nil {
		return nil, err
	}
	if err := required("arn", in.Arn != nil); err != nil {
		return nil, err
	}
	if err := s.validateChannelInput(&in); err != nil {
		return nil, err
	}
	if in.Tags != nil {
		return nil, errValidation("tags cannot be changed by UpdateChannel; use TagResource")
	}
	c, err := s.channelByARN("arn", *in.Arn)
	if err != nil {
		return nil, err
	}
	if _, live := s.store.Live.Get(c.ID); live {
		return nil, errConflict("channel %s is live; stop the stream before updating it", *in.Arn)
	}
	err = s.withRefs(func() error {
		c, err = s.store.Channels.Update(ctx, c.ID, func(c *store.Channel) error {
			if c.SRTPassphrase == "" {
				c.SRTPassphrase = auth.NewSRTPassphrase() // a channel created before SRT ingest
			}
			return s.applyChannelInput(c, &in)
		})
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound("channel %s not found", *in.Arn)
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"channel": s.channelOut(r, c)}, nil
}

func (s *Server) deleteChannel(ctx context.Context, r *request) (any, error) {
	resARN, err := arnArg(r)
	if err != nil {
		return nil, err
	}
	c, err := s.channelByARN("arn", resARN)
	if err != nil {
		return nil, err
	}
	if _, live := s.store.Live.Get(c.ID); live {
		return nil, errConflict("channel %s is live; stop the stream before deleting it", resARN)
	}
	// The channel goes first: once it is gone its keys authorize nothing, even if deleting a
	// key below fails halfway. Its key list is read again under s.refs, so that it holds every
	// key a CreateStreamKey on this node added before the delete.
	err = s.withRefs(func() error {
		var ok bool
		if c, ok = s.store.Channels.Get(c.ID); !ok {
			return store.ErrNotFound
		}
		return s.store.Channels.Delete(ctx, c.ID)
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errNotFound("channel %s not found", resARN)
		}
		return nil, err
	}
	for _, id := range c.StreamKeys {
		if k, ok := s.store.StreamKeys.Get(id); ok {
			s.removeStreamKey(ctx, k)
		}
	}
	return noContent{}, nil
}
