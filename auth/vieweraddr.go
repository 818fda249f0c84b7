package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// ViewerAddrHeader carries a viewer's address from the playback director to the edge it fetches
// the viewer's multivariant playlist from. Edges bind a private channel's session to the
// viewer's address, and without it they would bind it to the director's.
const ViewerAddrHeader = "X-Glasscast-Viewer-Addr"

// viewerAddrMaxAge bounds how old an assertion may be: it is made for one request, now.
const viewerAddrMaxAge = 30 * time.Second

// SignViewerAddr asserts that addr is the address of the viewer a request is made for, with the
// key directors and edges share, so that a viewer cannot claim another's address.
func SignViewerAddr(key []byte, addr netip.Addr, now time.Time) string {
	msg := addr.String() + "|" + strconv.FormatInt(now.Unix(), 10)
	return msg + "|" + viewerAddrMAC(key, msg)
}

// VerifyViewerAddr returns the address a header made by SignViewerAddr asserts, if its MAC holds
// and it is recent.
func VerifyViewerAddr(key []byte, header string, now time.Time) (netip.Addr, bool) {
	i := strings.LastIndexByte(header, '|')
	if len(key) == 0 || i < 0 {
		return netip.Addr{}, false
	}
	msg, mac := header[:i], header[i+1:]
	if !hmac.Equal([]byte(mac), []byte(viewerAddrMAC(key, msg))) {
		return netip.Addr{}, false
	}
	ip, ts, ok := strings.Cut(msg, "|")
	if !ok {
		return netip.Addr{}, false
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return netip.Addr{}, false
	}
	if age := now.Sub(time.Unix(sec, 0)); age > viewerAddrMaxAge || age < -viewerAddrMaxAge {
		return netip.Addr{}, false
	}
	addr, err := netip.ParseAddr(ip)
	return addr, err == nil
}

func viewerAddrMAC(key []byte, msg string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("glasscast viewer address\x00" + msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
