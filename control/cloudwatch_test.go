package control

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"

	"glasscast/awstest"
	"glasscast/bus"
	"glasscast/metrics"
	"glasscast/store"
)

const (
	cwTestKey    = "AKGCTESTTESTTESTTEST"
	cwTestSecret = "test/secret/key/0123456789abcdefghijklmn"
)

// cwFixture is a control server on a real store and metrics store with two hours of one
// channel's 1 s records and a day of 60 s records.
type cwFixture struct {
	url     string
	now     time.Time
	mu      sync.Mutex
	lastCT  string
	lastURL string
}

func newCWFixture(t testing.TB) *cwFixture {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := bus.Open(context.Background(), bus.Config{DataDir: t.TempDir(), Name: "cw-test"}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := store.Open(ctx, b.JS, bus.Replication{})
	if err != nil {
		t.Fatal(err)
	}
	ms, err := metrics.OpenStore(ctx, b.JS, bus.Replication{})
	if err != nil {
		t.Fatal(err)
	}
	f := &cwFixture{now: time.Now().Truncate(time.Minute)}
	// Ten minutes of 1 s data: 7 viewers, 2.5 Mb/s.
	for i := 0; i < 600; i++ {
		sec := f.now.Add(-10*time.Minute).Unix() + int64(i)
		if err := ms.Write(ctx, "chan1", metrics.Record{T: sec, S: 1, M: map[string]metrics.Agg{
			metrics.ConcurrentViews: metrics.One(7), metrics.IngestVideoBitrate: metrics.One(2.5e6)}}); err != nil {
			t.Fatal(err)
		}
	}
	srv := New(Config{Region: "us-east-1", Account: "000000000000", Metrics: ms,
		Secret: func(id string) (string, bool) { return cwTestSecret, id == cwTestKey }}, st, nil, nil, log)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.lastCT, f.lastURL = r.Header.Get("Content-Type"), r.URL.Path
		f.mu.Unlock()
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	f.url = hs.URL
	return f
}

func (f *cwFixture) client() *cloudwatch.Client {
	return cloudwatch.New(cloudwatch.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.url), RetryMaxAttempts: 1, HTTPClient: awstest.HTTPClient(),
		Credentials: credentials.NewStaticCredentialsProvider(cwTestKey, cwTestSecret, "")})
}

// The real aws-sdk-go-v2 CloudWatch client, which speaks RPC v2 CBOR.
func TestCloudWatchGoSDK(t *testing.T) {
	f := newCWFixture(t)
	ctx := context.Background()
	c := f.client()
	out, err := c.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(f.now.Add(-10 * time.Minute)), EndTime: aws.Time(f.now),
		MetricDataQueries: []cwtypes.MetricDataQuery{{Id: aws.String("views"), MetricStat: &cwtypes.MetricStat{
			Metric: &cwtypes.Metric{Namespace: aws.String("AWS/IVS"), MetricName: aws.String("ConcurrentViews"),
				Dimensions: []cwtypes.Dimension{{Name: aws.String("Channel"), Value: aws.String("chan1")}}},
			Period: aws.Int32(60), Stat: aws.String("Average")}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	ct, path := f.lastCT, f.lastURL
	f.mu.Unlock()
	if ct != "application/cbor" || path != "/service/GraniteServiceVersion20100801/operation/GetMetricData" {
		t.Fatalf("the SDK did not speak CBOR: %s %s", ct, path)
	}
	r := out.MetricDataResults[0]
	if len(r.Values) != 10 || r.Values[0] != 7 || r.StatusCode != cwtypes.StatusCodeComplete || *r.Label != "ConcurrentViews" {
		t.Fatalf("result %+v", r)
	}
	if !r.Timestamps[0].Equal(f.now.Add(-time.Minute)) || !r.Timestamps[9].Equal(f.now.Add(-10*time.Minute)) {
		t.Fatalf("timestamps (newest first) %v .. %v", r.Timestamps[0], r.Timestamps[9])
	}
	// Paging: MaxDatapoints 4 over 10 datapoints takes three pages.
	in := &cloudwatch.GetMetricDataInput{StartTime: aws.Time(f.now.Add(-10 * time.Minute)), EndTime: aws.Time(f.now), MaxDatapoints: aws.Int32(4),
		ScanBy: cwtypes.ScanByTimestampAscending,
		MetricDataQueries: []cwtypes.MetricDataQuery{{Id: aws.String("v"), MetricStat: &cwtypes.MetricStat{
			Metric: &cwtypes.Metric{Namespace: aws.String("AWS/IVS"), MetricName: aws.String("IngestVideoBitrate"),
				Dimensions: []cwtypes.Dimension{{Name: aws.String("Channel"), Value: aws.String("chan1")}, {Name: aws.String("Track"), Value: aws.String("Track0")}}},
			Period: aws.Int32(60), Stat: aws.String("Maximum")}}}}
	var all []time.Time
	for pages := 0; ; pages++ {
		out, err := c.GetMetricData(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, out.MetricDataResults[0].Timestamps...)
		if out.NextToken == nil {
			if pages != 2 {
				t.Fatalf("%d pages, want 3", pages+1)
			}
			break
		}
		in.NextToken = out.NextToken
	}
	if len(all) != 10 || !all[0].Before(all[9]) {
		t.Fatalf("paged timestamps %v", all)
	}
	_, err = c.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(f.now.Add(-time.Hour)), EndTime: aws.Time(f.now),
		MetricDataQueries: []cwtypes.MetricDataQuery{{Id: aws.String("v"), MetricStat: &cwtypes.MetricStat{
			Metric: &cwtypes.Metric{Namespace: aws.String("AWS/IVS"), MetricName: aws.String("ConcurrentViews")}, Period: aws.Int32(7), Stat: aws.String("Average")}}}})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidParameterValue" {
		t.Fatalf("want InvalidParameterValue, got %v", err)
	}
	lm, err := c.ListMetrics(ctx, &cloudwatch.ListMetricsInput{Namespace: aws.String("AWS/IVS"), MetricName: aws.String("IngestVideoBitrate")})
	if err != nil {
		t.Fatal(err)
	}
	if len(lm.Metrics) != 2 { // Channel, and Channel+Track
		t.Fatalf("ListMetrics %+v", lm.Metrics)
	}
}

// A NextToken is an offset into the page sequence; one we could not have issued is
// InvalidNextToken, however large: 2^63-1 used to overflow offset+limit and panic slicing the
// first result that held data.
func TestCloudWatchNextTokenOutOfRange(t *testing.T) {
	f := newCWFixture(t)
	ctx := context.Background()
	c := f.client()
	in := func(token string) *cloudwatch.GetMetricDataInput {
		return &cloudwatch.GetMetricDataInput{StartTime: aws.Time(f.now.Add(-10 * time.Minute)), EndTime: aws.Time(f.now),
			NextToken: aws.String(base64.RawURLEncoding.EncodeToString([]byte(token))),
			MetricDataQueries: []cwtypes.MetricDataQuery{{Id: aws.String("views"), MetricStat: &cwtypes.MetricStat{
				Metric: &cwtypes.Metric{Namespace: aws.String("AWS/IVS"), MetricName: aws.String("ConcurrentViews"),
					Dimensions: []cwtypes.Dimension{{Name: aws.String("Channel"), Value: aws.String("chan1")}}},
				Period: aws.Int32(60), Stat: aws.String("Average")}}}}
	}
	for _, token := range []string{"9223372036854775807", "9223372036854674000", strconv.Itoa(cwMaxOffset + 1), "-1", "x"} {
		_, err := c.GetMetricData(ctx, in(token))
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidNextToken" {
			t.Fatalf("NextToken %q: want InvalidNextToken, got %v", token, err)
		}
	}
	// The largest offset we accept is past every datapoint: an empty page, not an error.
	out, err := c.GetMetricData(ctx, in(strconv.Itoa(cwMaxOffset)))
	if err != nil || len(out.MetricDataResults) != 1 || len(out.MetricDataResults[0].Values) != 0 || out.NextToken != nil {
		t.Fatalf("offset %d: %+v %v", cwMaxOffset, out, err)
	}
}

// signedPost sends a SigV4-signed (service monitoring) request, as a CLI would.
func signedPost(t *testing.T, u, contentType string, hdr map[string]string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: cwTestKey, SecretAccessKey: cwTestSecret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "monitoring", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

// awsJson1_0 as botocore sends it (times as epoch seconds), and awsQuery as aws-cli v2 does.
func TestCloudWatchJSONAndQuery(t *testing.T) {
	f := newCWFixture(t)
	start, end := f.now.Add(-3*time.Minute).Unix(), f.now.Unix()
	body, _ := json.Marshal(map[string]any{"StartTime": start, "EndTime": end, "MetricDataQueries": []any{map[string]any{
		"Id": "q1", "MetricStat": map[string]any{"Metric": map[string]any{"Namespace": "AWS/IVS", "MetricName": "ConcurrentViews",
			"Dimensions": []any{map[string]any{"Name": "Channel", "Value": "arn:aws:ivs:us-east-1:000000000000:channel/chan1"}}},
			"Period": 60, "Stat": "Maximum"}}}})
	hdr := map[string]string{"X-Amz-Target": "GraniteServiceVersion20100801.GetMetricData", "x-amzn-query-mode": "true"}
	resp, b := signedPost(t, f.url+"/", "application/x-amz-json-1.0", hdr, body)
	var out struct {
		MetricDataResults []struct {
			Id         string
			Timestamps []int64
			Values     []float64
			StatusCode string
		}
	}
	if resp.StatusCode != 200 || json.Unmarshal(b, &out) != nil || len(out.MetricDataResults) != 1 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	r := out.MetricDataResults[0]
	if r.Id != "q1" || len(r.Values) != 3 || r.Values[0] != 7 || r.Timestamps[0] != end-60 {
		t.Fatalf("%s", b)
	}
	// Errors carry the query code in x-amzn-query-error.
	bad := bytes.Replace(body, []byte(`"Period":60`), []byte(`"Period":61`), 1)
	resp, b = signedPost(t, f.url+"/", "application/x-amz-json-1.0", hdr, bad)
	if resp.StatusCode != 400 || resp.Header.Get("x-amzn-query-error") != "InvalidParameterValue;Sender" ||
		!strings.Contains(string(b), `InvalidParameterValueException`) {
		t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, b)
	}

	form := url.Values{"Action": {"GetMetricData"}, "Version": {"2010-08-01"},
		"StartTime": {time.Unix(start, 0).UTC().Format(time.RFC3339)}, "EndTime": {time.Unix(end, 0).UTC().Format(time.RFC3339)},
		"MetricDataQueries.member.1.Id":                                          {"q1"},
		"MetricDataQueries.member.1.MetricStat.Metric.Namespace":                 {"AWS/IVS"},
		"MetricDataQueries.member.1.MetricStat.Metric.MetricName":                {"ConcurrentViews"},
		"MetricDataQueries.member.1.MetricStat.Metric.Dimensions.member.1.Name":  {"Channel"},
		"MetricDataQueries.member.1.MetricStat.Metric.Dimensions.member.1.Value": {"chan1"},
		"MetricDataQueries.member.1.MetricStat.Period":                           {"60"},
		"MetricDataQueries.member.1.MetricStat.Stat":                             {"Minimum"},
	}
	resp, b = signedPost(t, f.url+"/", "application/x-www-form-urlencoded; charset=utf-8", nil, []byte(form.Encode()))
	var x struct {
		Results []struct {
			Id         string   `xml:"Id"`
			Timestamps []string `xml:"Timestamps>member"`
			Values     []string `xml:"Values>member"`
		} `xml:"GetMetricDataResult>MetricDataResults>member"`
	}
	if resp.StatusCode != 200 || xml.Unmarshal(b, &x) != nil || len(x.Results) != 1 || len(x.Results[0].Values) != 3 ||
		x.Results[0].Values[0] != "7" || x.Results[0].Timestamps[2] != time.Unix(start, 0).UTC().Format(time.RFC3339) {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	form.Set("MetricDataQueries.member.1.Id", "Q-1")
	resp, b = signedPost(t, f.url+"/", "application/x-www-form-urlencoded; charset=utf-8", nil, []byte(form.Encode()))
	if resp.StatusCode != 400 || !strings.Contains(string(b), "<Code>InvalidParameterValue</Code>") || !strings.Contains(string(b), "<Type>Sender</Type>") {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	form.Set("Action", "PutMetricData")
	resp, b = signedPost(t, f.url+"/", "application/x-www-form-urlencoded; charset=utf-8", nil, []byte(form.Encode()))
	if resp.StatusCode != 400 || !strings.Contains(string(b), "<Code>InvalidAction</Code>") {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

// An awsQuery key nested deeper than any real parameter is refused as the CBOR path refuses
// over-nesting, before a tree is built: a megabyte of "a.a.a..." used to cost a recursion half
// a million deep and about a gigabyte.
func TestCloudWatchQueryKeyDepth(t *testing.T) {
	for parts, ok := range map[int]bool{9: true, cwMaxKeyParts: true, cwMaxKeyParts + 1: false} {
		var in cwInput
		_, err := decodeQueryForm([]byte("Action=ListMetrics&"+strings.Repeat("a.", parts-1)+"a=1"), &in)
		if (err == nil) != ok {
			t.Errorf("%d parts: err %v", parts, err)
		}
	}

	f := newCWFixture(t)
	body := []byte("Action=GetMetricData&Version=2010-08-01&" + strings.Repeat("a.", 500000) + "a=1")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	resp, b := signedPost(t, f.url+"/", "application/x-www-form-urlencoded; charset=utf-8", nil, body)
	runtime.ReadMemStats(&after)
	// The body is read, signed and parsed a few times over; a tree of it is hundreds of MB.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
		t.Errorf("a %d-byte request allocated %d MB", len(body), alloc>>20)
	}
	if resp.StatusCode != 400 || !strings.Contains(string(b), "<Code>InvalidParameterValue</Code>") || !strings.Contains(string(b), "nesting") {
		t.Fatalf("%d %.300s", resp.StatusCode, b)
	}
}

// BenchmarkGetMetricData24h is GetMetricData for 24 h of 1-minute data, end to end through the
// Go SDK (CBOR), the SigV4 check and the store.
func BenchmarkGetMetricData24h(b *testing.B) {
	f := newCWFixture(b)
	ctx := context.Background()
	// A second channel with a day of 60 s records.
	bs, err := bus.Open(ctx, bus.Config{DataDir: b.TempDir(), Name: "cw-bench"}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer bs.Close()
	st, err := store.Open(ctx, bs.JS, bus.Replication{})
	if err != nil {
		b.Fatal(err)
	}
	ms, err := metrics.OpenStore(ctx, bs.JS, bus.Replication{})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 1440; i++ {
		rec := metrics.Record{T: f.now.Add(-24 * time.Hour).Add(time.Duration(i) * time.Minute).Unix(), S: 60,
			M: map[string]metrics.Agg{metrics.ConcurrentViews: {Sum: 600, Min: 9, Max: 11, N: 60}, metrics.IngestVideoBitrate: {Sum: 60 * 2.5e6, Min: 2e6, Max: 3e6, N: 60}}}
		if err := ms.Write(ctx, "chanDay", rec); err != nil {
			b.Fatal(err)
		}
	}
	srv := New(Config{Region: "us-east-1", Account: "000000000000", Metrics: ms,
		Secret: func(id string) (string, bool) { return cwTestSecret, id == cwTestKey }}, st, nil, nil, slog.New(slog.DiscardHandler))
	hs := httptest.NewServer(srv)
	defer hs.Close()
	c := cloudwatch.New(cloudwatch.Options{Region: "us-east-1", BaseEndpoint: aws.String(hs.URL), RetryMaxAttempts: 1, HTTPClient: awstest.HTTPClient(),
		Credentials: credentials.NewStaticCredentialsProvider(cwTestKey, cwTestSecret, "")})
	in := &cloudwatch.GetMetricDataInput{StartTime: aws.Time(f.now.Add(-24 * time.Hour)), EndTime: aws.Time(f.now),
		MetricDataQueries: []cwtypes.MetricDataQuery{{Id: aws.String("views"), MetricStat: &cwtypes.MetricStat{
			Metric: &cwtypes.Metric{Namespace: aws.String("AWS/IVS"), MetricName: aws.String("ConcurrentViews"),
				Dimensions: []cwtypes.Dimension{{Name: aws.String("Channel"), Value: aws.String("chanDay")}}},
			Period: aws.Int32(60), Stat: aws.String("Average")}}}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := c.GetMetricData(ctx, in)
		if err != nil || len(out.MetricDataResults[0].Values) != 1440 {
			b.Fatalf("%v", err)
		}
	}
}
