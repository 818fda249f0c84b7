package control

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"glasscast/metrics"
)

// MetricsReader answers CloudWatch reads from the metrics store.
type MetricsReader interface {
	Query(ctx context.Context, q metrics.Query, now time.Time) (metrics.Series, error)
	List(ctx context.Context, f metrics.ListFilter) ([]metrics.MetricID, error)
}

// CloudWatch's target prefix (JSON 1.0 X-Amz-Target, RPC v2 CBOR path) and XML namespace.
const (
	cwTarget   = "GraniteServiceVersion20100801"
	cwCBORPath = "/service/" + cwTarget + "/operation/"
	cwXMLNS    = "http://monitoring.amazonaws.com/doc/2010-08-01/"
)

// cwProtocol is how a CloudWatch request arrived; the answer goes back the same way.
type cwProtocol int

const (
	cwQuery cwProtocol = iota // awsQuery: form in, XML out
	cwJSON                    // awsJson1_0 with x-amzn-query-mode
	cwCBOR                    // rpcv2Cbor
)

// cwError is a CloudWatch error; the JSON and CBOR protocols also carry Code in the
// x-amzn-query-error header, which the query-compatible clients report.
type cwError struct {
	Status   int
	Code     string // the awsQuery code: InvalidParameterValue, MissingParameter, ...
	Shape    string // the JSON/CBOR __type shape name
	Receiver bool   // fault of the server rather than the sender
	Message  string
}

func (e *cwError) Error() string { return e.Code + ": " + e.Message }

func cwInvalid(format string, a ...any) *cwError {
	return &cwError{Status: http.StatusBadRequest, Code: "InvalidParameterValue", Shape: "InvalidParameterValueException", Message: fmt.Sprintf(format, a...)}
}

func cwMissing(name string) *cwError {
	return &cwError{Status: http.StatusBadRequest, Code: "MissingParameter", Shape: "MissingRequiredParameterException",
		Message: "The parameter " + name + " is required."}
}

// serveCloudWatch answers the monitoring service: GetMetricData and ListMetrics for namespace
// AWS/IVS, in whichever of CloudWatch's three protocols the client speaks.
func (s *Server) serveCloudWatch(w http.ResponseWriter, r *http.Request, body []byte) (string, int) {
	proto, op := cwQuery, ""
	switch {
	case strings.HasPrefix(r.URL.Path, cwCBORPath):
		proto, op = cwCBOR, strings.TrimPrefix(r.URL.Path, cwCBORPath)
	case strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json-1.0") || r.Header.Get("X-Amz-Target") != "":
		proto = cwJSON
		op = strings.TrimPrefix(r.Header.Get("X-Amz-Target"), cwTarget+".")
	}
	var in cwInput
	var err error
	if proto == cwQuery {
		op, err = decodeQueryForm(body, &in)
	} else {
		err = decodeCW(proto, body, &in)
	}
	if err != nil {
		return s.writeCWError(w, proto, cwInvalid("malformed request: %v", err))
	}
	if s.cfg.Metrics == nil {
		return s.writeCWError(w, proto, &cwError{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable", Shape: "ServiceUnavailable",
			Receiver: true, Message: "metrics are not recorded by this deployment"})
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	var out any
	switch op {
	case "GetMetricData":
		out, err = s.getMetricData(ctx, &in)
	case "ListMetrics":
		out, err = s.listMetrics(ctx, &in)
	default:
		err = &cwError{Status: http.StatusBadRequest, Code: "InvalidAction", Shape: "InvalidAction",
			Message: fmt.Sprintf("The action %q is not valid for this web service (Glasscast answers GetMetricData and ListMetrics).", op)}
	}
	if err != nil {
		var ce *cwError
		if !errors.As(err, &ce) {
			s.log.Error("cloudwatch operation failed", "op", op, "err", err)
			ce = &cwError{Status: http.StatusInternalServerError, Code: "InternalServiceError", Shape: "InternalServiceFault",
				Receiver: true, Message: "internal error"}
		}
		return s.writeCWError(w, proto, ce)
	}
	return s.writeCW(w, proto, op, out)
}

// cwInput holds the members of both operations' inputs; each protocol decodes into it.
type cwInput struct {
	MetricDataQueries []cwQueryIn
	StartTime         *cwTime
	EndTime           *cwTime
	NextToken         string
	ScanBy            string
	MaxDatapoints     *cwInt
	// ListMetrics
	Namespace  string
	MetricName string
	Dimensions []cwDimension
}

type cwQueryIn struct {
	Id         string
	MetricStat *cwMetricStat
	Expression string
	Label      string
	ReturnData *cwBool
	Period     *cwInt
	AccountId  string
}

type cwMetricStat struct {
	Metric struct {
		Namespace  string
		MetricName string
		Dimensions []cwDimension
	}
	Period *cwInt
	Stat   string
	Unit   string
}

type cwDimension struct {
	Name  string
	Value string
}

// cwResult is one MetricDataResult.
type cwResult struct {
	ID         string
	Label      string
	StatusCode string
	Timestamps []time.Time
	Values     []float64
}

type cwGetMetricDataOutput struct {
	Results   []cwResult
	NextToken string
}

type cwListMetricsOutput struct {
	Metrics []metrics.MetricID
}

var cwIDPattern = regexp.MustCompile(`^[a-z][a-zA-Z0-9_]*$`)

// cwMaxDatapoints is GetMetricData's default and largest page.
const cwMaxDatapoints = 100800

// cwMaxQueries is the most MetricDataQueries one GetMetricData request may carry.
const cwMaxQueries = 500

// cwMaxOffset bounds a NextToken's offset: no request can have more datapoints than this, so a
// larger offset was not issued by us, and offset+limit stays far from overflowing an int.
const cwMaxOffset = cwMaxQueries * cwMaxDatapoints

func (s *Server) getMetricData(ctx context.Context, in *cwInput) (any, error) {
	if len(in.MetricDataQueries) == 0 {
		return nil, cwMissing("MetricDataQueries")
	}
	if len(in.MetricDataQueries) > cwMaxQueries {
		return nil, cwInvalid("The collection MetricDataQueries must not have more than %d members.", cwMaxQueries)
	}
	if in.StartTime == nil {
		return nil, cwMissing("StartTime")
	}
	if in.EndTime == nil {
		return nil, cwMissing("EndTime")
	}
	start, end := in.StartTime.t, in.EndTime.t
	if !start.Before(end) {
		return nil, cwInvalid("The parameter StartTime must be less than the parameter EndTime.")
	}
	switch in.ScanBy {
	case "", "TimestampDescending", "TimestampAscending":
	default:
		return nil, cwInvalid("The parameter ScanBy must be TimestampDescending or TimestampAscending.")
	}
	limit := cwMaxDatapoints
	if in.MaxDatapoints != nil {
		if in.MaxDatapoints.v < 1 || in.MaxDatapoints.v > cwMaxDatapoints {
			return nil, cwInvalid("The parameter MaxDatapoints must be between 1 and %d.", cwMaxDatapoints)
		}
		limit = int(in.MaxDatapoints.v)
	}
	offset := 0
	if in.NextToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(in.NextToken)
		n, aerr := strconv.Atoi(string(b))
		if err != nil || aerr != nil || n < 0 || n > cwMaxOffset {
			return nil, &cwError{Status: http.StatusBadRequest, Code: "InvalidNextToken", Shape: "InvalidNextToken", Message: "The NextToken is not valid."}
		}
		offset = n
	}
	seen := map[string]bool{}
	var results []cwResult
	now := time.Now()
	for i, q := range in.MetricDataQueries {
		field := fmt.Sprintf("MetricDataQueries.member.%d", i+1)
		if len(q.Id) > 255 || !cwIDPattern.MatchString(q.Id) {
			return nil, cwInvalid("The value %q for parameter %s.Id must start with a lower-case letter and contain only letters, digits and underscores.", q.Id, field)
		}
		if seen[q.Id] {
			return nil, cwInvalid("The value %q for parameter %s.Id is not unique.", q.Id, field)
		}
		seen[q.Id] = true
		if q.Expression != "" {
			return nil, cwInvalid("%s.Expression: metric math is not supported by Glasscast; use MetricStat.", field)
		}
		if q.MetricStat == nil {
			return nil, cwMissing(field + ".MetricStat")
		}
		ms := q.MetricStat
		if ms.Metric.MetricName == "" {
			return nil, cwMissing(field + ".MetricStat.Metric.MetricName")
		}
		if ms.Stat == "" {
			return nil, cwMissing(field + ".MetricStat.Stat")
		}
		if ms.Period == nil {
			return nil, cwMissing(field + ".MetricStat.Period")
		}
		mq := metrics.Query{Namespace: ms.Metric.Namespace, Metric: ms.Metric.MetricName, Dimensions: map[string]string{},
			Period: ms.Period.v, Stat: ms.Stat, Start: start, End: end}
		for _, d := range ms.Metric.Dimensions {
			mq.Dimensions[d.Name] = d.Value
		}
		series, err := s.cfg.Metrics.Query(ctx, mq, now)
		var pe *metrics.ParamError
		if errors.As(err, &pe) {
			return nil, cwInvalid("%s: %s", field, pe.Message)
		}
		if err != nil {
			return nil, err
		}
		if q.ReturnData != nil && !q.ReturnData.v {
			continue
		}
		label := q.Label
		if label == "" {
			label = ms.Metric.MetricName
		}
		res := cwResult{ID: q.Id, Label: label, StatusCode: "Complete", Timestamps: series.Timestamps, Values: series.Values}
		if in.ScanBy != "TimestampAscending" {
			reverse(res.Timestamps)
			reverse(res.Values)
		}
		results = append(results, res)
	}
	// Pages cut the concatenation of every result's datapoints; a result whose datapoints are
	// all on another page is still listed, empty, as CloudWatch does.
	out := cwGetMetricDataOutput{}
	pos, stop := 0, offset+limit // both bounded above, so no sum or difference here overflows
	for _, r := range results {
		n := len(r.Values)
		lo, hi := clamp(offset-pos, 0, n), clamp(stop-pos, 0, n)
		r.Timestamps, r.Values = r.Timestamps[lo:hi], r.Values[lo:hi]
		if hi < n {
			r.StatusCode = "PartialData"
		}
		out.Results = append(out.Results, r)
		pos += n
	}
	if stop < pos {
		out.NextToken = base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(stop)))
	}
	return out, nil
}

func (s *Server) listMetrics(ctx context.Context, in *cwInput) (any, error) {
	f := metrics.ListFilter{Namespace: in.Namespace, MetricName: in.MetricName}
	if len(in.Dimensions) > 10 {
		return nil, cwInvalid("The collection Dimensions must not have more than 10 members.")
	}
	for _, d := range in.Dimensions {
		f.Dimensions = append(f.Dimensions, [2]string{d.Name, d.Value})
	}
	ids, err := s.cfg.Metrics.List(ctx, f)
	if err != nil {
		return nil, err
	}
	return cwListMetricsOutput{Metrics: ids}, nil
}

func reverse[T any](s []T) {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
}

func clamp(v, lo, hi int) int { return max(lo, min(v, hi)) }
