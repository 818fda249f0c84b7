package redact

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	if got := URL("https://user:pw@h.example/p?token=s#frag", "webhook"); got != "https://h.example/p" {
		t.Error(got)
	}
	if got := URL("http://[::1", "webhook"); got != "<webhook>" {
		t.Error(got)
	}
}

func TestErr(t *testing.T) {
	inner := errors.New("connection refused")
	err := Err(&url.Error{Op: "Post", URL: "https://u:p@h.example/hook?token=s", Err: inner}, "webhook")
	if s := err.Error(); s != "Post https://h.example/hook: connection refused" || !errors.Is(err, inner) {
		t.Errorf("%q (wraps the cause: %v)", s, errors.Is(err, inner))
	}
	if s := Err(&url.Error{Op: "Post", URL: "http://[::1?token=s", Err: inner}, "handler").Error(); strings.Contains(s, "token") || !strings.Contains(s, "<handler>") {
		t.Error(s)
	}
	if Err(inner, "webhook") != inner {
		t.Error("an error without a URL changed")
	}
}
