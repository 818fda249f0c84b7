// Package awstest holds what the tests of the AWS-compatible APIs share when they call them with
// the real aws-sdk-go-v2 clients.
package awstest

import (
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// HTTPClient is the HTTP client for SDK clients that make one attempt per call: the SDK's own,
// with one race of its own taken out (see HideBodyWriteTo).
func HTTPClient() aws.HTTPClient { return HideBodyWriteTo(awshttp.NewBuildableClient()) }

// HideBodyWriteTo wraps c so that request bodies no longer offer WriteTo. smithy-go closes a
// request's body as soon as the answer's headers are in, and its closed body's WriteTo reports
// io.EOF as an error. A server that answers before net/http's write loop has finished with the
// body (its last step is a read for bytes past the Content-Length) meets that error, and the
// write loop closes the connection under the answer being read: "StatusCode: 200 ... failed to
// decode response body ... use of closed network connection" (aws/aws-sdk-go-v2#1825, #2737).
// The SDK's default retryer hides this by retrying; tests make one attempt, so that a server's
// failure shows (and a retried CreateChannel would create two). A fast local server on a busy
// machine met it about once in 3,000 calls. With WriteTo hidden, the closed body's Read reports
// a plain end, and the bytes sent do not change.
func HideBodyWriteTo(c aws.HTTPClient) aws.HTTPClient { return hideBodyWriteTo{c} }

type hideBodyWriteTo struct{ c aws.HTTPClient }

func (h hideBodyWriteTo) Do(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = struct{ io.ReadCloser }{r.Body}
	}
	return h.c.Do(r)
}
