package control

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"glasscast/auth"
	"glasscast/store"
)

// playbackPolicyJSON is IVS's PlaybackRestrictionPolicy (and its summary: the same members).
type playbackPolicyJSON struct {
	Arn                           string            `json:"arn"`
	Name                          string            `json:"name"`
	AllowedCountries              []string          `json:"allowedCountries"`
	AllowedOrigins                []string          `json:"allowedOrigins"`
	EnableStrictOriginEnforcement bool              `json:"enableStrictOriginEnforcement"`
	Tags                          map[string]string `json:"tags"`
}

const playbackPolicyType = "playback-restriction-policy"

func (s *Server) playbackPolicyOut(p store.PlaybackRestrictionPolicy) playbackPolicyJSON {
	nonNil := func(v []string) []string {
		if v == nil {
			return []string{}
		}
		return v
	}
	return playbackPolicyJSON{Arn: s.arn("ivs", playbackPolicyType, p.ID), Name: p.Name,
		AllowedCountries: nonNil(p.AllowedCountries), AllowedOrigins: nonNil(p.AllowedOrigins),
		EnableStrictOriginEnforcement: p.EnableStrictOriginEnforcement, Tags: tagsOut(p.Tags)}
}

// playbackPolicyInput is what CreatePlaybackRestrictionPolicy and Update… accept.
type playbackPolicyInput struct {
	Arn                           *string
	Name                          *string
	AllowedCountries              []string
	AllowedOrigins                []string
	EnableStrictOriginEnforcement *bool
	Tags                          map[string]string
}

// maxPolicyListLen bounds allowedCountries and allowedOrigins; every country fits.
const maxPolicyListLen = 300

func (s *Server) validatePlaybackPolicy(in *playbackPolicyInput) error {
	if err := checkName("name", in.Name); err != nil {
		return err
	}
	if len(in.AllowedCountries) > maxPolicyListLen {
		return errValidation("1 validation error detected: Value at 'allowedCountries' failed to satisfy constraint: Member must have length less than or equal to %d", maxPolicyListLen)
	}
	restrictsCountries := false
	for _, c := range in.AllowedCountries {
		if c == "*" {
			continue
		}
		if len(c) != 2 || !strings.Contains(isoCountries, " "+c+" ") {
			return constraint("allowedCountries", c, "Member must be an officially assigned ISO 3166-1 alpha-2 country code (upper case) or *")
		}
		restrictsCountries = true
	}
	if restrictsCountries && !s.cfg.CountryLookup && !contains(in.AllowedCountries, "*") {
		return errValidation("allowedCountries: this deployment cannot tell a viewer's country, so a policy naming countries would not be enforced; " +
			"configure edge.countryHeader (a header such as CloudFront-Viewer-Country set by the CDN or load balancer in front) or edge.geoipDatabase (a MaxMind-format database file), or allow *")
	}
	if len(in.AllowedOrigins) > maxPolicyListLen {
		return errValidation("1 validation error detected: Value at 'allowedOrigins' failed to satisfy constraint: Member must have length less than or equal to %d", maxPolicyListLen)
	}
	for _, o := range in.AllowedOrigins {
		if !validOrigin(o) {
			return constraint("allowedOrigins", o, "Member must be * or an Origin header value, scheme://host[:port] (the host may start with *.)")
		}
	}
	return checkTags("tags", in.Tags)
}

// validOrigin accepts what a browser sends as Origin, a host wildcard "*." and "*".
func validOrigin(o string) bool {
	if o == "*" {
		return true
	}
	if len(o) > 128 {
		return false
	}
	u, err := url.Parse(strings.Replace(o, "://*.", "://wildcard.", 1))
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.Path == "" &&
		u.RawQuery == "" && u.Fragment == "" && u.User == nil && !strings.Contains(u.Hostname(), "*")
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func (s *Server) playbackPolicyByARN(field, v string) (store.PlaybackRestrictionPolicy, error) {
	return byARN(s, s.store.PlaybackPolicies, playbackPolicyType, "playback restriction policy", field, v)
}

func (s *Server) createPlaybackPolicy(ctx context.Context, r *request) (any, error) {
	var in playbackPolicyInput
	if err := decode(r.body, &in); err != nil {
		return nil, err
	}
	if err := s.validatePlaybackPolicy(&in); err != nil {
		return nil, err
	}
	if q := s.cfg.Quotas.PlaybackRestrictionPolicies; q > 0 && s.store.PlaybackPolicies.Len() >= q {
		return nil, errQuota("maximum number of playback restriction policies (%d) reached", q)
	}
	p := store.PlaybackRestrictionPolicy{ID: auth.NewID(), AllowedCountries: in.AllowedCountries, AllowedOrigins: in.AllowedOrigins,
		Tags: in.Tags, CreatedAt: time.Now().UTC()}
	if in.Name != nil {
		p.Name = *in.Name
	}
	if in.EnableStrictOriginEnforcement != nil {
		p.EnableStrictOriginEnforcement = *in.EnableStrictOriginEnforcement
	}
	if err := s.store.PlaybackPolicies.Create(ctx, p.ID, p); err != nil {
		return nil, err
	}
	return map[string]any{"playbackRestrictionPolicy": s.playbackPolicyOut(p)}, nil
}

func (s *Server) getPlaybackPolicy(ctx context.Context, r *request) (any, error) {
	resARN, err := arnArg(r)
	if err != nil {
		return nil, err
	}
	p, err := s.playbackPolicyByARN("arn", resARN)
	if err != nil {
		return nil, err
	}
	return map[string]any{"playbackRestrictionPolicy": s.playbackPolicyOut(p)}, nil
}

func (s *Server) listPlaybackPolicies(ctx context.Context, r *request) (any, error) {
	return listAll(r, s.store.PlaybackPolicies, 100, "playbackRestrictionPolicies", s.playbackPolicyOut)
}

func (s *Server) updatePlaybackPolicy(ctx context.Context, r *request) (any, error) {
	var in playbackPolicyInput
	if err := decode(r.body, &in); err != nil {
		return nil, err
	}
	if err := required("arn", in.Arn != nil); err != nil {
		return nil, err
	}
	if in.Tags != nil {
		return nil, errValidation("tags cannot be changed by UpdatePlaybackRestrictionPolicy; use TagResource")
	}
	if err := s.validatePlaybackPolicy(&in); err != nil {
		return nil, err
	}
	p, err := s.playbackPolicyByARN("arn", *in.Arn)
	if err != nil {
		return nil, err
	}
	p, err = s.store.PlaybackPolicies.Update(ctx, p.ID, func(p *store.PlaybackRestrictionPolicy) error {
		if in.Name != nil {
			p.Name = *in.Name
		}
		if in.AllowedCountries != nil {
			p.AllowedCountries = in.AllowedCountries
		}
		if in.AllowedOrigins != nil {
			p.AllowedOrigins = in.AllowedOrigins
		}
		if in.EnableStrictOriginEnforcement != nil {
			p.EnableStrictOriginEnforcement = *in.EnableStrictOriginEnforcement
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound("playback restriction policy %s not found", *in.Arn)
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"playbackRestrictionPolicy": s.playbackPolicyOut(p)}, nil
}

func (s *Server) deletePlaybackPolicy(ctx context.Context, r *request) (any, error) {
	resARN, err := arnArg(r)
	if err != nil {
		return nil, err
	}
	p, err := s.playbackPolicyByARN("arn", resARN)
	if err != nil {
		return nil, err
	}
	policyARN := s.arn("ivs", playbackPolicyType, p.ID)
	err = s.withRefs(func() error {
		for _, c := range s.store.Channels.List() {
			if c.Value.PlaybackRestrictionPolicyArn == policyARN {
				return errConflict("playback restriction policy %s is used by channel %s", resARN, s.channelARN(c.Key))
			}
		}
		return s.store.PlaybackPolicies.Delete(ctx, p.ID)
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errNotFound("playback restriction policy %s not found", resARN)
		}
		return nil, err
	}
	return noContent{}, nil
}

// startViewerSessionRevocation records, for every edge, that the viewer's sessions on the
// channel up to a version are revoked. Edges watch the table; entries outlive any session.
func (s *Server) startViewerSessionRevocation(ctx context.Context, r *request) (any, error) {
	var in struct {
		ChannelArn                             *string
		ViewerId                               *string
		ViewerSessionVersionsLessThanOrEqualTo *int64
	}
	if err := decode(r.body, &in); err != nil {
		return nil, err
	}
	if err := required("channelArn", in.ChannelArn != nil); err != nil {
		return nil, err
	}
	if err := required("viewerId", in.ViewerId != nil); err != nil {
		return nil, err
	}
	if n := len(*in.ViewerId); n < 1 || n > 40 {
		return nil, constraint("viewerId", *in.ViewerId, "Member must have length between 1 and 40")
	}
	var version int64
	if v := in.ViewerSessionVersionsLessThanOrEqualTo; v != nil {
		if *v < 0 || *v > 1<<31-1 {
			return nil, errValidation("1 validation error detected: Value '%d' at 'viewerSessionVersionsLessThanOrEqualTo' failed to satisfy constraint: Member must have value between 0 and 2147483647", *v)
		}
		version = *v
	}
	c, err := s.channelByARN("channelArn", *in.ChannelArn)
	if err != nil {
		return nil, err
	}
	key := store.RevocationKey(c.ID, *in.ViewerId)
	// A later, lower revocation must not lift a higher one still in force; every write
	// restarts the entry's TTL.
	raise := func(v *int64) error {
		*v = max(*v, version)
		return nil
	}
	for attempt := 0; ; attempt++ {
		_, err = s.store.Revocations.Update(ctx, key, raise)
		if errors.Is(err, store.ErrNotFound) {
			err = s.store.Revocations.Create(ctx, key, version)
		}
		if !errors.Is(err, store.ErrExists) || attempt == 2 {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("revoke viewer sessions: %w", err)
	}
	return map[string]any{}, nil
}

// isoCountries are the officially assigned ISO 3166-1 alpha-2 codes, space-separated.
const isoCountries = " AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ" +
	" BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ" +
	" CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ" +
	" DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR" +
	" GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY" +
	" HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP" +
	" KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY" +
	" MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ" +
	" NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA" +
	" RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ" +
	" TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ" +
	" VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW "
