package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"glasscast/store"
)

var (
	reName        = regexp.MustCompile(`^[a-zA-Z0-9-_]*$`)
	reTagKey      = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]+$`)
	reTagValue    = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)
	reNextToken   = regexp.MustCompile(`^[a-zA-Z0-9+/=_-]*$`)
	reBucketName  = regexp.MustCompile(`^[a-z0-9-.]+$`)
	reResourceID  = regexp.MustCompile(`^[a-zA-Z0-9-]+$`)
	reStreamID    = regexp.MustCompile(`^st-[a-zA-Z0-9]+$`)
	reARNResource = regexp.MustCompile(`^arn:aws:(ivs|ivschat):([a-z0-9-]+):([0-9]+):([a-z-]+)/([a-zA-Z0-9-]+)$`)
)

// decode reads a JSON request body into v. An empty body is an empty object, as AWS treats it.
func decode(body []byte, v any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	d := json.NewDecoder(strings.NewReader(string(body)))
	if err := d.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return errValidation("1 validation error detected: Value at '%s' failed to satisfy constraint: Member must be of type %s", te.Field, te.Type)
		}
		return errValidation("request body is not valid JSON: %v", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return errValidation("request body has data after the JSON object")
	}
	return nil
}

func constraint(field, value, rule string) *apiError {
	return errValidation("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s", value, field, rule)
}

func checkName(field string, v *string) error {
	if v == nil {
		return nil
	}
	if n := utf8.RuneCountInString(*v); n > 128 {
		return constraint(field, *v, "Member must have length less than or equal to 128")
	}
	if !reName.MatchString(*v) {
		return constraint(field, *v, "Member must satisfy regular expression pattern: [a-zA-Z0-9-_]*")
	}
	return nil
}

func checkEnum(field string, v *string, allowed ...string) error {
	if v == nil {
		return nil
	}
	for _, a := range allowed {
		if *v == a {
			return nil
		}
	}
	return constraint(field, *v, "Member must satisfy enum value set: ["+strings.Join(allowed, ", ")+"]")
}

func checkTags(field string, tags map[string]string) error {
	if len(tags) > 50 {
		return errValidation("1 validation error detected: Value at '%s' failed to satisfy constraint: Member must have at most 50 entries", field)
	}
	for k, v := range tags {
		if err := checkTagKey(field, k); err != nil {
			return err
		}
		if utf8.RuneCountInString(v) > 256 || !reTagValue.MatchString(v) {
			return constraint(field+"."+k, v, "Tag values must be at most 256 characters of letters, spaces, digits and _.:/=+-@")
		}
	}
	return nil
}

func checkTagKey(field, k string) error {
	if utf8.RuneCountInString(k) > 128 || !reTagKey.MatchString(k) {
		return constraint(field, k, "Tag keys must be 1 to 128 characters of letters, spaces, digits and _.:/=+-@")
	}
	if strings.HasPrefix(strings.ToLower(k), "aws:") {
		return constraint(field, k, "Tag keys may not begin with the reserved prefix aws:")
	}
	return nil
}

func checkMaxResults(v *int, max int) (int, error) {
	if v == nil {
		return max, nil // IVS pages by its maximum when maxResults is absent
	}
	if *v < 1 || *v > max {
		return 0, errValidation("1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and %d", *v, max)
	}
	return *v, nil
}

func required(field string, present bool) error {
	if !present {
		return errValidation("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", field)
	}
	return nil
}

// arn is a parsed Glasscast resource ARN.
type arn struct {
	Service, Region, Account, Type, ID string
}

func (a arn) String() string {
	return fmt.Sprintf("arn:aws:%s:%s:%s:%s/%s", a.Service, a.Region, a.Account, a.Type, a.ID)
}

func parseARN(s string) (arn, bool) {
	if len(s) > 128 {
		return arn{}, false
	}
	m := reARNResource.FindStringSubmatch(s)
	if m == nil {
		return arn{}, false
	}
	return arn{Service: m[1], Region: m[2], Account: m[3], Type: m[4], ID: m[5]}, true
}

// byARN resolves an IVS resource ARN of type typ to its record: ValidationException for a
// malformed ARN or one of another type, ResourceNotFoundException for an unknown one or one of
// another region or account.
func byARN[T any](s *Server, t *store.Table[T], typ, noun, field, v string) (T, error) {
	var zero T
	a, ok := parseARN(v)
	if !ok || a.Service != "ivs" || a.Type != typ {
		return zero, constraint(field, v, "Member must satisfy regular expression pattern: arn:aws:ivs:[a-z0-9-]+:[0-9]+:"+typ+"/[a-zA-Z0-9-]+")
	}
	rec, found := t.Get(a.ID)
	if !found || !s.ownARN(a) {
		return zero, errNotFound("%s %s not found", noun, v)
	}
	return rec, nil
}

// arnArg reads the {"arn": ...} body that Get and Delete operations take.
func arnArg(r *request) (string, error) {
	var in struct{ Arn *string }
	if err := decode(r.body, &in); err != nil {
		return "", err
	}
	if err := required("arn", in.Arn != nil); err != nil {
		return "", err
	}
	return *in.Arn, nil
}
