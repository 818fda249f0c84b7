package metrics

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Query asks for one metric's statistic per period, as a GetMetricData MetricStat does.
type Query struct {
	Namespace  string
	Metric     string
	Dimensions map[string]string
	Period     int64 // seconds
	Stat       string
	Start, End time.Time
}

// Series is a query's answer, oldest first; Timestamps are period starts.
type Series struct {
	Timestamps []time.Time
	Values     []float64
}

// ParamError is a query CloudWatch would refuse with InvalidParameterValue.
type ParamError struct{ Message string }

func (e *ParamError) Error() string { return e.Message }

func paramErr(format string, a ...any) error { return &ParamError{fmt.Sprintf(format, a...)} }

// Statistics lists the statistics Glasscast computes.
func Statistics() []string { return []string{"Average", "Sum", "Minimum", "Maximum", "SampleCount"} }

// ValidPeriod reports whether CloudWatch accepts a period: 1, 5, 10, 30 or a multiple of 60.
func ValidPeriod(p int64) bool {
	return p == 1 || p == 5 || p == 10 || p == 30 || (p >= 60 && p%60 == 0)
}

// Check validates a query without reading data.
func (q Query) Check() error {
	if !ValidPeriod(q.Period) {
		return paramErr("The parameter Period must be 1, 5, 10, 30 or a multiple of 60 (got %d).", q.Period)
	}
	if !slices.Contains(Statistics(), q.Stat) {
		return paramErr("The statistic %q is not supported; use one of %s.", q.Stat, strings.Join(Statistics(), ", "))
	}
	if !q.Start.Before(q.End) {
		return paramErr("The parameter StartTime must be less than the parameter EndTime.")
	}
	if len(q.Dimensions) > 30 {
		return paramErr("The collection MetricDataQueries.member.Dimensions must not have more than 30 members.")
	}
	return nil
}

// tierFor picks the finest tier that still holds data as old as start; CloudWatch's rule that
// older data needs coarser periods follows from it.
func tierFor(start, now time.Time) (Tier, bool) {
	for _, t := range Tiers() {
		if now.Sub(start) <= t.Retention {
			return t, true
		}
	}
	return Tier{}, false
}

// series resolves a query's metric and dimensions to a scope and series key; ok is false for
// a metric or dimension combination that has no data by definition.
func (q Query) series() (scope, key string, ok bool) {
	def, found := Lookup(q.Metric)
	if !found || q.Namespace != Namespace {
		return "", "", false
	}
	names := make([]string, 0, len(q.Dimensions))
	for n := range q.Dimensions {
		names = append(names, n)
	}
	slices.Sort(names)
	match := false
	for _, set := range def.DimensionSets {
		s := slices.Clone(set)
		slices.Sort(s)
		if slices.Equal(s, names) {
			match = true
		}
	}
	if !match {
		return "", "", false
	}
	scope, key = Account, q.Metric
	if ch, has := q.Dimensions[DimChannel]; has {
		// IVS documents the value as the channel id, its ConcurrentViews row as the ARN.
		scope = ch[strings.LastIndexByte(ch, '/')+1:]
		if scope == "" || strings.ContainsAny(scope, ".*> ") {
			return "", "", false
		}
	}
	if t, has := q.Dimensions[DimTrack]; has && t != trackName {
		return "", "", false // single-track input: only Track0 exists
	}
	if c, has := q.Dimensions[DimCountryCode]; has && c != unknownCountry {
		return "", "", false // no geolocation: every viewer is UNKNOWN
	}
	if h, has := q.Dimensions[DimHealth]; has {
		key += "|" + DimHealth + "=" + h
	}
	return scope, key, true
}

// Query answers q from the tier that holds its start time (now is the present).
func (s *Store) Query(ctx context.Context, q Query, now time.Time) (Series, error) {
	if err := q.Check(); err != nil {
		return Series{}, err
	}
	scope, key, ok := q.series()
	if !ok {
		return Series{}, nil
	}
	tier, ok := tierFor(q.Start, now)
	if !ok {
		return Series{}, nil
	}
	if q.Period%tier.Period != 0 {
		return Series{}, paramErr("Data older than %s is kept at %d-second resolution: the parameter Period must be a multiple of %d.",
			retentionOfFiner(tier), tier.Period, tier.Period)
	}
	from := time.Unix(q.Start.Unix()-q.Start.Unix()%q.Period, 0)
	recs, err := s.Read(ctx, tier.Period, scope, from, q.End)
	if err != nil {
		return Series{}, err
	}
	bins := map[int64]*Agg{}
	var order []int64
	for _, r := range recs {
		a, ok := r.M[key]
		if !ok {
			continue
		}
		b := r.T - r.T%q.Period
		cur := bins[b]
		if cur == nil {
			cur = &Agg{}
			bins[b] = cur
			order = append(order, b)
		}
		cur.Add(a)
	}
	slices.Sort(order)
	out := Series{}
	for _, b := range order {
		a := bins[b]
		var v float64
		switch q.Stat {
		case "Average":
			v = a.Sum / a.N
		case "Sum":
			v = a.Sum
		case "Minimum":
			v = a.Min
		case "Maximum":
			v = a.Max
		case "SampleCount":
			v = a.N
		}
		out.Timestamps = append(out.Timestamps, time.Unix(b, 0).UTC())
		out.Values = append(out.Values, v)
	}
	return out, nil
}

func retentionOfFiner(t Tier) time.Duration {
	prev := time.Duration(0)
	for _, x := range Tiers() {
		if x.Period == t.Period {
			return prev
		}
		prev = x.Retention
	}
	return prev
}

// MetricID is one metric with one set of dimension values.
type MetricID struct {
	Name       string
	Dimensions [][2]string // name, value, in definition order
}

// ListFilter narrows ListMetrics: empty fields match everything; a dimension filter with an
// empty value matches any value.
type ListFilter struct {
	Namespace  string
	MetricName string
	Dimensions [][2]string
}

// List returns the metrics that have data within the retention of the 60 s tier (CloudWatch
// lists metrics with data in the last two weeks).
func (s *Store) List(ctx context.Context, f ListFilter) ([]MetricID, error) {
	if f.Namespace != "" && f.Namespace != Namespace {
		return nil, nil
	}
	scopes := map[string]bool{}
	for _, p := range []int64{1, 60} {
		ss, err := s.Scopes(ctx, p)
		if err != nil {
			return nil, err
		}
		for _, sc := range ss {
			scopes[sc] = true
		}
	}
	var channels []string
	for sc := range scopes {
		if sc != Account {
			channels = append(channels, sc)
		}
	}
	slices.Sort(channels)
	var out []MetricID
	for _, def := range Definitions() {
		if f.MetricName != "" && f.MetricName != def.Name {
			continue
		}
		for _, set := range def.DimensionSets {
			for _, id := range expand(def.Name, set, channels, scopes[Account]) {
				if matches(id, f.Dimensions) {
					out = append(out, id)
				}
			}
		}
	}
	return out, nil
}

func expand(name string, set, channels []string, account bool) []MetricID {
	if len(set) == 0 {
		if !account {
			return nil
		}
		return []MetricID{{Name: name}}
	}
	if set[0] == DimHealth {
		if !account {
			return nil
		}
		var out []MetricID
		for _, h := range healthValues() {
			out = append(out, MetricID{Name: name, Dimensions: [][2]string{{DimHealth, h}}})
		}
		return out
	}
	var out []MetricID
	for _, ch := range channels {
		dims := [][2]string{{DimChannel, ch}}
		if len(set) == 2 {
			v := trackName
			if set[1] == DimCountryCode {
				v = unknownCountry
			}
			dims = append(dims, [2]string{set[1], v})
		}
		out = append(out, MetricID{Name: name, Dimensions: dims})
	}
	return out
}

func matches(id MetricID, filter [][2]string) bool {
	for _, f := range filter {
		found := false
		for _, d := range id.Dimensions {
			if d[0] == f[0] && (f[1] == "" || f[1] == d[1]) {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}
