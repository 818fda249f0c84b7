package control

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"

	"glasscast/metrics"
)

// The three protocols share one input shape: awsQuery's form is turned into the same tree the
// JSON and CBOR protocols carry, and numbers, booleans and times accept each protocol's
// spelling (form strings, JSON numbers, CBOR tags).

// cwTime is a timestamp: epoch seconds (JSON), ISO 8601 (form, or JSON strings), CBOR tag 1.
type cwTime struct{ t time.Time }

func (c *cwTime) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	return c.set(v)
}

func (c *cwTime) UnmarshalCBOR(b []byte) error {
	var t time.Time
	if err := cbor.Unmarshal(b, &t); err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	return c.set(t)
}

func (c *cwTime) set(v any) error {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) > 1e12 {
			return fmt.Errorf("timestamp %v out of range", x)
		}
		sec, frac := math.Modf(x)
		c.t = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	case string:
		if f, err := strconv.ParseFloat(x, 64); err == nil {
			return c.set(f)
		}
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04Z07:00", "2006-01-02"} {
			if t, err := time.Parse(layout, x); err == nil {
				c.t = t.UTC()
				return nil
			}
		}
		return fmt.Errorf("timestamp %q is not ISO 8601", x)
	case time.Time:
		c.t = x.UTC()
	default:
		return fmt.Errorf("timestamp of type %T", v)
	}
	return nil
}

// cwInt is an integer that may arrive as a string (form) or a number.
type cwInt struct{ v int64 }

func (c *cwInt) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	return c.set(v)
}

func (c *cwInt) UnmarshalCBOR(b []byte) error {
	var v any
	if err := cbor.Unmarshal(b, &v); err != nil {
		return err
	}
	return c.set(v)
}

func (c *cwInt) set(v any) error {
	switch x := v.(type) {
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", x)
		}
		c.v = n
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return fmt.Errorf("%v is not an integer", x)
		}
		c.v = int64(x)
	case uint64:
		if x > math.MaxInt64 {
			return fmt.Errorf("%d is too large", x)
		}
		c.v = int64(x)
	case int64:
		c.v = x
	default:
		return fmt.Errorf("integer of type %T", v)
	}
	return nil
}

// cwBool is a boolean that may arrive as "true"/"false" (form).
type cwBool struct{ v bool }

func (c *cwBool) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	return c.set(v)
}

func (c *cwBool) UnmarshalCBOR(b []byte) error {
	var v any
	if err := cbor.Unmarshal(b, &v); err != nil {
		return err
	}
	return c.set(v)
}

func (c *cwBool) set(v any) error {
	switch x := v.(type) {
	case bool:
		c.v = x
	case string:
		b, err := strconv.ParseBool(x)
		if err != nil {
			return fmt.Errorf("%q is not a boolean", x)
		}
		c.v = b
	default:
		return fmt.Errorf("boolean of type %T", v)
	}
	return nil
}

// cborDec bounds what a request may make the decoder allocate.
var cborDec, _ = cbor.DecOptions{MaxNestedLevels: 16, MaxArrayElements: 100000, MaxMapPairs: 100000}.DecMode()

// cborEnc writes timestamps as tag 1 with a float64, as Smithy's RPC v2 CBOR does.
var cborEnc, _ = cbor.EncOptions{Time: cbor.TimeUnixMicro, TimeTag: cbor.EncTagRequired}.EncMode()

func decodeCW(proto cwProtocol, body []byte, in *cwInput) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if proto == cwCBOR {
		return cborDec.Unmarshal(body, in)
	}
	return json.Unmarshal(body, in)
}

// formNode is one level of an awsQuery form's dotted keys; "member.N" makes a list.
type formNode struct {
	val  *string
	kids map[string]*formNode
	list map[int]*formNode
}

func (n *formNode) insert(parts []string, v string) error {
	if len(parts) == 0 {
		n.val = &v
		return nil
	}
	if parts[0] == "member" {
		if len(parts) < 2 {
			return errors.New("list member without an index")
		}
		i, err := strconv.Atoi(parts[1])
		if err != nil || i < 1 || i > 100000 {
			return fmt.Errorf("list index %q", parts[1])
		}
		if n.list == nil {
			n.list = map[int]*formNode{}
		}
		c := n.list[i]
		if c == nil {
			c = &formNode{}
			n.list[i] = c
		}
		return c.insert(parts[2:], v)
	}
	if n.kids == nil {
		n.kids = map[string]*formNode{}
	}
	c := n.kids[parts[0]]
	if c == nil {
		c = &formNode{}
		n.kids[parts[0]] = c
	}
	return c.insert(parts[1:], v)
}

func (n *formNode) tree() any {
	switch {
	case n.list != nil:
		idx := make([]int, 0, len(n.list))
		for i := range n.list {
			idx = append(idx, i)
		}
		slices.Sort(idx)
		out := make([]any, 0, len(idx))
		for _, i := range idx {
			out = append(out, n.list[i].tree())
		}
		return out
	case n.kids != nil:
		out := make(map[string]any, len(n.kids))
		for k, c := range n.kids {
			out[k] = c.tree()
		}
		return out
	case n.val != nil:
		return *n.val
	}
	return nil
}

// cwMaxKeyParts bounds the dotted parts of an awsQuery key, as cborDec's MaxNestedLevels bounds
// the other protocols: the tree is built, marshalled and decoded recursively, so a megabyte of
// "a.a.a..." would otherwise cost a recursion half a million deep and a gigabyte. The deepest
// real key (MetricDataQueries.member.N.MetricStat.Metric.Dimensions.member.N.Value) has 9
// parts. The number of keys is bounded by url.ParseQuery (10,000 parameters).
const cwMaxKeyParts = 16

// decodeQueryForm reads an awsQuery request and returns its Action.
func decodeQueryForm(body []byte, in *cwInput) (string, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return "", err
	}
	root := &formNode{}
	for k, vs := range form {
		if k == "Action" || k == "Version" || len(vs) == 0 {
			continue
		}
		if strings.Count(k, ".") >= cwMaxKeyParts {
			return "", fmt.Errorf("parameter %.64q...: more than %d levels of nesting", k, cwMaxKeyParts)
		}
		if err := root.insert(strings.Split(k, "."), vs[0]); err != nil {
			return "", fmt.Errorf("parameter %q: %w", k, err)
		}
	}
	b, err := json.Marshal(root.tree())
	if err != nil {
		return "", err
	}
	if string(b) != "null" {
		if err := json.Unmarshal(b, in); err != nil {
			return "", err
		}
	}
	return form.Get("Action"), nil
}

// writeCW encodes an operation's output in the request's protocol.
func (s *Server) writeCW(w http.ResponseWriter, proto cwProtocol, op string, out any) (string, int) {
	if proto == cwQuery {
		var doc any
		reqID := w.Header().Get("x-amzn-RequestId")
		switch o := out.(type) {
		case cwGetMetricDataOutput:
			doc = xmlGetMetricData(o, reqID)
		case cwListMetricsOutput:
			doc = xmlListMetrics(o, reqID)
		}
		b, err := xml.Marshal(doc)
		if err != nil {
			return s.writeCWError(w, proto, &cwError{Status: 500, Code: "InternalServiceError", Shape: "InternalServiceFault", Receiver: true, Message: "internal error"})
		}
		w.Header().Set("Content-Type", "text/xml")
		_, _ = w.Write(append([]byte(xml.Header), b...))
		return "", http.StatusOK
	}
	var m map[string]any
	switch o := out.(type) {
	case cwGetMetricDataOutput:
		results := make([]any, 0, len(o.Results))
		for _, r := range o.Results {
			var ts any = r.Timestamps
			if proto == cwJSON {
				secs := make([]int64, len(r.Timestamps))
				for i, t := range r.Timestamps {
					secs[i] = t.Unix()
				}
				ts = secs
			}
			vals := r.Values
			if vals == nil {
				vals = []float64{}
			}
			results = append(results, map[string]any{"Id": r.ID, "Label": r.Label, "Timestamps": ts, "Values": vals,
				"StatusCode": r.StatusCode, "Messages": []any{}})
		}
		m = map[string]any{"MetricDataResults": results, "Messages": []any{}}
		if o.NextToken != "" {
			m["NextToken"] = o.NextToken
		}
	case cwListMetricsOutput:
		ms := make([]any, 0, len(o.Metrics))
		for _, id := range o.Metrics {
			dims := make([]any, 0, len(id.Dimensions))
			for _, d := range id.Dimensions {
				dims = append(dims, map[string]any{"Name": d[0], "Value": d[1]})
			}
			ms = append(ms, map[string]any{"Namespace": metrics.Namespace, "MetricName": id.Name, "Dimensions": dims})
		}
		m = map[string]any{"Metrics": ms}
	}
	return s.writeCWBody(w, proto, http.StatusOK, m)
}

func (s *Server) writeCWBody(w http.ResponseWriter, proto cwProtocol, status int, m map[string]any) (string, int) {
	var b []byte
	var err error
	if proto == cwCBOR {
		b, err = cborEnc.Marshal(m)
		w.Header().Set("Content-Type", "application/cbor")
		// Generated v1.53 deserializers refuse any answer, errors included, without it.
		w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	} else {
		b, err = json.Marshal(m)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	}
	if err != nil {
		status, b = http.StatusInternalServerError, nil
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
	return "", status
}

func (s *Server) writeCWError(w http.ResponseWriter, proto cwProtocol, e *cwError) (string, int) {
	fault := "Sender"
	if e.Receiver {
		fault = "Receiver"
	}
	if proto == cwQuery {
		doc := xmlErrorResponse{Xmlns: cwXMLNS, RequestID: w.Header().Get("x-amzn-RequestId")}
		doc.Error.Type, doc.Error.Code, doc.Error.Message = fault, e.Code, e.Message
		b, _ := xml.Marshal(doc)
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(e.Status)
		_, _ = w.Write(append([]byte(xml.Header), b...))
		return e.Code, e.Status
	}
	// Query-compatible clients take the code from this header, not from __type.
	w.Header().Set("x-amzn-query-error", e.Code+";"+fault)
	s.writeCWBody(w, proto, e.Status, map[string]any{"__type": "com.amazonaws.cloudwatch#" + e.Shape, "message": e.Message})
	return e.Code, e.Status
}

type xmlList[T any] struct {
	Members []T `xml:"member"`
}

type xmlResult struct {
	ID         string          `xml:"Id"`
	Label      string          `xml:"Label"`
	StatusCode string          `xml:"StatusCode"`
	Timestamps xmlList[string] `xml:"Timestamps"`
	Values     xmlList[string] `xml:"Values"`
	Messages   xmlList[string] `xml:"Messages"`
}

type xmlGetMetricDataResponse struct {
	XMLName xml.Name `xml:"GetMetricDataResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Result  struct {
		Results   xmlList[xmlResult] `xml:"MetricDataResults"`
		NextToken string             `xml:"NextToken,omitempty"`
		Messages  xmlList[string]    `xml:"Messages"`
	} `xml:"GetMetricDataResult"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

func xmlGetMetricData(o cwGetMetricDataOutput, reqID string) xmlGetMetricDataResponse {
	doc := xmlGetMetricDataResponse{Xmlns: cwXMLNS, RequestID: reqID}
	doc.Result.NextToken = o.NextToken
	for _, r := range o.Results {
		x := xmlResult{ID: r.ID, Label: r.Label, StatusCode: r.StatusCode}
		for i, t := range r.Timestamps {
			x.Timestamps.Members = append(x.Timestamps.Members, t.UTC().Format(time.RFC3339))
			x.Values.Members = append(x.Values.Members, strconv.FormatFloat(r.Values[i], 'f', -1, 64))
		}
		doc.Result.Results.Members = append(doc.Result.Results.Members, x)
	}
	return doc
}

type xmlDimension struct {
	Name  string `xml:"Name"`
	Value string `xml:"Value"`
}

type xmlMetric struct {
	Namespace  string                `xml:"Namespace"`
	MetricName string                `xml:"MetricName"`
	Dimensions xmlList[xmlDimension] `xml:"Dimensions"`
}

type xmlListMetricsResponse struct {
	XMLName xml.Name `xml:"ListMetricsResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Result  struct {
		Metrics xmlList[xmlMetric] `xml:"Metrics"`
	} `xml:"ListMetricsResult"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

func xmlListMetrics(o cwListMetricsOutput, reqID string) xmlListMetricsResponse {
	doc := xmlListMetricsResponse{Xmlns: cwXMLNS, RequestID: reqID}
	for _, id := range o.Metrics {
		m := xmlMetric{Namespace: metrics.Namespace, MetricName: id.Name}
		for _, d := range id.Dimensions {
			m.Dimensions.Members = append(m.Dimensions.Members, xmlDimension{d[0], d[1]})
		}
		doc.Result.Metrics.Members = append(doc.Result.Metrics.Members, m)
	}
	return doc
}

type xmlErrorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}
