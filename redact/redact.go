// Package redact keeps secrets out of what is logged: a URL's user info, query and fragment,
// where a webhook's or a handler's token often rides.
package redact

import (
	"errors"
	"fmt"
	"net/url"
)

// URL is s without its user info, query and fragment; "<name>" when s does not parse.
func URL(s, name string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<" + name + ">"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// Err is err with the URL of the *url.Error in it redacted as URL redacts it (net/http's
// client errors name the whole URL); any other error is returned as it is.
func Err(err error, name string) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	return fmt.Errorf("%s %s: %w", ue.Op, URL(ue.URL, name), ue.Err)
}
