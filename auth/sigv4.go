package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
)

// SigV4Error is a refused signature, carrying the error code AWS would answer with.
type SigV4Error struct {
	Code    string // MissingAuthenticationTokenException, UnrecognizedClientException, ...
	Message string
}

func (e *SigV4Error) Error() string { return e.Code + ": " + e.Message }

// Identity is who signed a request and for which service scope.
type Identity struct {
	AccessKeyID string
	Region      string
	Service     string
}

// SigV4Verifier checks AWS Signature Version 4 on incoming requests against a set of access
// keys, recomputing the signature over exactly the headers the client says it signed.
type SigV4Verifier struct {
	// Secret returns the secret of an access key ID.
	Secret func(accessKeyID string) (string, bool)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxSkew is how far the request time may be from now; default 5 minutes, as AWS.
	MaxSkew time.Duration
	// Region is the deployment's region: a credential scoped to another is refused, as AWS
	// refuses a signature for another region's endpoint. Empty accepts any.
	Region string
}

// DefaultMaxSkew is AWS's: a signed request is valid 5 minutes either side of its time.
const DefaultMaxSkew = 5 * time.Minute

const sigV4Algorithm = "AWS4-HMAC-SHA256"

// Service reads the signing service from a request's credential scope without verifying
// anything, so a server that speaks for several services can choose a handler.
func Service(r *http.Request) string {
	a, err := parseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return ""
	}
	return a.service
}

type authorization struct {
	accessKey, date, region, service string
	signedHeaders                    []string
	signature                        string
}

func parseAuthorization(h string) (authorization, error) {
	var a authorization
	rest, ok := strings.CutPrefix(h, sigV4Algorithm+" ")
	if !ok {
		return a, &SigV4Error{"IncompleteSignatureException", "Authorization header requires AWS4-HMAC-SHA256 signing."}
	}
	for _, f := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		switch k {
		case "Credential":
			p := strings.Split(v, "/")
			if len(p) != 5 || p[4] != "aws4_request" {
				return a, &SigV4Error{"IncompleteSignatureException", "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term."}
			}
			a.accessKey, a.date, a.region, a.service = p[0], p[1], p[2], p[3]
		case "SignedHeaders":
			a.signedHeaders = strings.Split(v, ";")
		case "Signature":
			a.signature = v
		}
	}
	if a.accessKey == "" || len(a.signedHeaders) == 0 || a.signature == "" {
		return a, &SigV4Error{"IncompleteSignatureException", "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters."}
	}
	return a, nil
}

// Verify checks r's signature, and that its credential scope names the verifier's region and
// one of services (the services whose operation r calls; any when none are given). body is the
// request body already read by the caller (the signature covers its hash). Refusals carry
// AWS's error code and wording.
func (v *SigV4Verifier) Verify(r *http.Request, body []byte, services ...string) (Identity, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return Identity{}, &SigV4Error{"MissingAuthenticationTokenException", "Missing Authentication Token"}
	}
	a, err := parseAuthorization(h)
	if err != nil {
		return Identity{}, err
	}
	secret, ok := v.Secret(a.accessKey)
	if !ok {
		return Identity{}, &SigV4Error{"UnrecognizedClientException", "The security token included in the request is invalid."}
	}
	amzDate := r.Header.Get("X-Amz-Date")
	t, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil || !strings.HasPrefix(amzDate, a.date) {
		return Identity{}, &SigV4Error{"IncompleteSignatureException", "X-Amz-Date must be present and match the credential scope date."}
	}
	if v.Region != "" && a.region != v.Region {
		return Identity{}, &SigV4Error{"InvalidSignatureException", fmt.Sprintf("Credential should be scoped to a valid region, not '%s'. ", a.region)}
	}
	if len(services) > 0 && !slices.Contains(services, a.service) {
		return Identity{}, &SigV4Error{"InvalidSignatureException", fmt.Sprintf("Credential should be scoped to correct service: '%s'. ", services[0])}
	}
	now, skew := time.Now(), v.MaxSkew
	if v.Now != nil {
		now = v.Now()
	}
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	const stamp = "20060102T150405Z"
	mins := int(skew / time.Minute)
	if now.Sub(t) > skew {
		return Identity{}, &SigV4Error{"InvalidSignatureException", fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - %d min.)",
			amzDate, now.Add(-skew).UTC().Format(stamp), now.UTC().Format(stamp), mins)}
	}
	if t.Sub(now) > skew {
		return Identity{}, &SigV4Error{"InvalidSignatureException", fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + %d min.)",
			amzDate, now.Add(skew).UTC().Format(stamp), now.UTC().Format(stamp), mins)}
	}
	payloadHash := sha256Hex(body)
	if claimed := r.Header.Get("X-Amz-Content-Sha256"); claimed != "" && claimed != payloadHash {
		return Identity{}, &SigV4Error{"InvalidSignatureException", "The provided 'x-amz-content-sha256' header does not match what was computed."}
	}
	creq, err := canonicalRequest(r, a.signedHeaders, payloadHash)
	if err != nil {
		return Identity{}, err
	}
	scope := strings.Join([]string{a.date, a.region, a.service, "aws4_request"}, "/")
	sts := strings.Join([]string{sigV4Algorithm, amzDate, scope, sha256Hex([]byte(creq))}, "\n")
	key := hmacSHA256([]byte("AWS4"+secret), a.date)
	key = hmacSHA256(key, a.region)
	key = hmacSHA256(key, a.service)
	key = hmacSHA256(key, "aws4_request")
	want := hex.EncodeToString(hmacSHA256(key, sts))
	if !hmac.Equal([]byte(want), []byte(a.signature)) {
		return Identity{}, &SigV4Error{"InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."}
	}
	return Identity{AccessKeyID: a.accessKey, Region: a.region, Service: a.service}, nil
}

func canonicalRequest(r *http.Request, signed []string, payloadHash string) (string, error) {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	// Non-S3 clients encode the already-escaped path once more (so /tags/arn%3A... is signed
	// as /tags/arn%253A...); re-escaping the path as received reproduces that.
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	b.WriteString(escapePath(path))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.Query()))
	b.WriteByte('\n')
	hasHost := false
	for _, name := range signed {
		if name != strings.ToLower(name) {
			return "", &SigV4Error{"IncompleteSignatureException", "SignedHeaders must be lower case."}
		}
		var vals []string
		switch name {
		case "host":
			hasHost = true
			vals = []string{r.Host}
		case "content-length":
			vals = r.Header.Values(name)
			if len(vals) == 0 {
				vals = []string{fmt.Sprint(r.ContentLength)}
			}
		default:
			vals = r.Header.Values(name)
		}
		for i, v := range vals {
			vals[i] = strings.Join(strings.Fields(v), " ")
		}
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(strings.Join(vals, ","))
		b.WriteByte('\n')
	}
	if !hasHost {
		return "", &SigV4Error{"IncompleteSignatureException", "The host header must be signed."}
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signed, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String(), nil
}

func canonicalQuery(q url.Values) string {
	type kv struct{ k, v string }
	var all []kv
	for k, vs := range q {
		for _, v := range vs {
			all = append(all, kv{escape(k), escape(v)})
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].k != all[j].k {
			return all[i].k < all[j].k
		}
		return all[i].v < all[j].v
	})
	parts := make([]string, len(all))
	for i, p := range all {
		parts[i] = p.k + "=" + p.v
	}
	return strings.Join(parts, "&")
}

// escape is SigV4's URI encoding: every byte but the RFC 3986 unreserved set is %XX.
func escape(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = escape(s)
	}
	return strings.Join(segs, "/")
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
