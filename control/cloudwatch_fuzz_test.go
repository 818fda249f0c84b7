package control

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"glasscast/bus"
	"glasscast/metrics"
	"glasscast/store"
)

// FuzzCloudWatch feeds arbitrary bodies to GetMetricData and ListMetrics in each of the three
// protocols (form, JSON 1.0, CBOR) against a real metrics store holding a minute of data: every request must get an
// answer or a CloudWatch-shaped client error, never a panic or an internal error.
func FuzzCloudWatch(f *testing.F) {
	seeds := []string{
		`{}`, `[`, `null`, `{"StartTime":1,"EndTime":2}`,
		`{"StartTime":1795597200,"EndTime":1795600800,"MetricDataQueries":[{"Id":"q1","MetricStat":{"Metric":{"Namespace":"AWS/IVS","MetricName":"ConcurrentViews","Dimensions":[{"Name":"Channel","Value":"abc"}]},"Period":60,"Stat":"Average"}}]}`,
		`{"StartTime":"2026-11-05T08:07:10Z","EndTime":1e300,"MetricDataQueries":[{"Id":"a","MetricStat":{"Period":"x"}}]}`,
		`{"MaxDatapoints":0,"NextToken":"%%%","ScanBy":"Sideways"}`,
		"Action=GetMetricData&Version=2010-08-01&StartTime=2026-11-05T08:07:10Z&EndTime=2026-11-05T09:07:10Z&MetricDataQueries.member.1.Id=q&MetricDataQueries.member.1.MetricStat.Period=60&MetricDataQueries.member.1.MetricStat.Stat=Sum&MetricDataQueries.member.1.MetricStat.Metric.MetricName=LiveInputTime&MetricDataQueries.member.1.MetricStat.Metric.Namespace=AWS/IVS",
		"Action=ListMetrics&Dimensions.member.1.Name=Channel&Dimensions.member.99999999999.Value=x",
		"Action=GetMetricData&MetricDataQueries.member.1=x&MetricDataQueries.member.1.Id=y",
		"Action=GetMetricData&MetricDataQueries.member=1",
	}
	// Seeds over the minute of data written below: paging arithmetic only runs on results that
	// hold datapoints, which an empty store never reaches.
	now := time.Now()
	from, to := now.Add(-time.Hour).Unix(), now.Add(time.Minute).Unix()
	q := `"MetricDataQueries":[{"Id":"q","MetricStat":{"Metric":{"Namespace":"AWS/IVS","MetricName":"ConcurrentViews","Dimensions":[{"Name":"Channel","Value":"fz"}]},"Period":1,"Stat":"Sum"}}]`
	huge := base64.RawURLEncoding.EncodeToString([]byte("9223372036854775807"))
	seeds = append(seeds,
		fmt.Sprintf(`{"StartTime":%d,"EndTime":%d,"MaxDatapoints":7,%s}`, from, to, q),
		fmt.Sprintf(`{"StartTime":%d,"EndTime":%d,"MaxDatapoints":7,"NextToken":"NTU","ScanBy":"TimestampAscending",%s}`, from, to, q),
		fmt.Sprintf(`{"StartTime":%d,"EndTime":%d,"NextToken":%q,%s}`, from, to, huge, q),
		fmt.Sprintf("Action=GetMetricData&StartTime=%d&EndTime=%d&NextToken=%s&MetricDataQueries.member.1.Id=q&MetricDataQueries.member.1.MetricStat.Period=1&MetricDataQueries.member.1.MetricStat.Stat=Sum&MetricDataQueries.member.1.MetricStat.Metric.MetricName=ConcurrentViews&MetricDataQueries.member.1.MetricStat.Metric.Namespace=AWS/IVS&MetricDataQueries.member.1.MetricStat.Metric.Dimensions.member.1.Name=Channel&MetricDataQueries.member.1.MetricStat.Metric.Dimensions.member.1.Value=fz", from, to, huge),
	)
	ops := []string{"GetMetricData", "ListMetrics"}
	for _, s := range seeds {
		for _, op := range ops {
			f.Add(s, op, uint8(0))
			f.Add(s, op, uint8(1))
		}
	}
	// A CBOR seed with a tag 1 timestamp.
	c, _ := cborEnc.Marshal(map[string]any{"StartTime": cbor.Tag{Number: 1, Content: 1795597200.5}, "EndTime": 1795600800,
		"MetricDataQueries": []any{map[string]any{"Id": "q1", "MetricStat": map[string]any{"Period": 60, "Stat": "Maximum",
			"Metric": map[string]any{"Namespace": "AWS/IVS", "MetricName": "ConcurrentViews"}}}}})
	f.Add(string(c), "GetMetricData", uint8(2))

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := bus.Open(context.Background(), bus.Config{DataDir: f.TempDir(), Name: "cw-fuzz"}, log)
	if err != nil {
		f.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(ctx, b.JS, bus.Replication{})
	if err != nil {
		f.Fatal(err)
	}
	ms, err := metrics.OpenStore(ctx, b.JS, bus.Replication{})
	if err != nil {
		f.Fatal(err)
	}
	for i := int64(0); i < 60; i++ {
		rec := metrics.Record{T: now.Add(-2*time.Minute).Unix() + i, S: 1, M: map[string]metrics.Agg{metrics.ConcurrentViews: metrics.One(3)}}
		if err := ms.Write(ctx, "fz", rec); err != nil {
			f.Fatal(err)
		}
	}
	srv := New(Config{Region: "us-east-1", Account: "000000000000", Metrics: ms}, st, nil, nil, log)
	f.Fuzz(func(t *testing.T, body, op string, proto uint8) {
		var r *http.Request
		switch proto % 3 {
		case 0:
			r = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		case 1:
			r = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/x-amz-json-1.0")
			r.Header.Set("X-Amz-Target", cwTarget+"."+op)
		case 2:
			r = httptest.NewRequest(http.MethodPost, cwCBORPath+url.PathEscape(op), strings.NewReader(body))
			r.Header.Set("Content-Type", "application/cbor")
		}
		w := httptest.NewRecorder()
		w.Header().Set("x-amzn-RequestId", "fuzz")
		_, status := srv.serveCloudWatch(w, r, []byte(body))
		if status >= 500 {
			t.Fatalf("protocol %d op %s body %q: status %d %s", proto%3, op, body, status, w.Body.String())
		}
		if status >= 400 && proto%3 != 0 && w.Header().Get("x-amzn-query-error") == "" {
			t.Fatalf("error without x-amzn-query-error: %s", w.Body.String())
		}
	})
}
