package control

import (
	"encoding/base64"

	"glasscast/store"
)

// Page tokens are opaque to clients: the base64 of the last key returned, so a page stays
// correct when records are added or removed between calls.
func encodeNextToken(lastKey string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(lastKey))
}

func decodeNextToken(tok *string) (string, error) {
	if tok == nil || *tok == "" {
		return "", nil
	}
	if len(*tok) > 1024 || !reNextToken.MatchString(*tok) {
		return "", constraint("nextToken", *tok, "Member must satisfy regular expression pattern: [a-zA-Z0-9+/=_-]*")
	}
	b, err := base64.RawURLEncoding.DecodeString(*tok)
	if err != nil || len(b) == 0 {
		return "", errValidation("nextToken %q is not a token this API returned", *tok)
	}
	return string(b), nil
}

// page walks items in key order after the token's key, keeps those that pass keep, and stops
// at max, returning the token for the next page ("" on the last page).
func page[T any](items []store.Item[T], tok *string, max int, keep func(T) bool) ([]T, string, error) {
	after, err := decodeNextToken(tok)
	if err != nil {
		return nil, "", err
	}
	var out []T
	last := ""
	for _, it := range items {
		if after != "" && it.Key <= after {
			continue
		}
		if keep != nil && !keep(it.Value) {
			continue
		}
		if len(out) == max {
			return out, encodeNextToken(last), nil
		}
		out = append(out, it.Value)
		last = it.Key
	}
	return out, "", nil
}

// listResponse builds a List* answer with the AWS habit of omitting an empty nextToken.
func listResponse(field string, items any, next string) map[string]any {
	resp := map[string]any{field: items}
	if next != "" {
		resp["nextToken"] = next
	}
	return resp
}

// listAll answers a List operation that takes only nextToken and maxResults: a page of every
// record of t, each turned into its API shape by out, under the response member field.
func listAll[T, J any](r *request, t *store.Table[T], maxResults int, field string, out func(T) J) (any, error) {
	var in struct {
		NextToken  *string
		MaxResults *int
	}
	if err := decode(r.body, &in); err != nil {
		return nil, err
	}
	max, err := checkMaxResults(in.MaxResults, maxResults)
	if err != nil {
		return nil, err
	}
	recs, next, err := page(t.List(), in.NextToken, max, nil)
	if err != nil {
		return nil, err
	}
	items := make([]J, 0, len(recs))
	for _, rec := range recs {
		items = append(items, out(rec))
	}
	return listResponse(field, items, next), nil
}

// channelPage reads the {channelArn, nextToken, maxResults} body of a List operation scoped to
// one channel.
func (s *Server) channelPage(r *request, maxResults int) (store.Channel, *string, int, error) {
	var in struct {
		ChannelArn *string
		NextToken  *string
		MaxResults *int
	}
	if err := decode(r.body, &in); err != nil {
		return store.Channel{}, nil, 0, err
	}
	if err := required("channelArn", in.ChannelArn != nil); err != nil {
		return store.Channel{}, nil, 0, err
	}
	max, err := checkMaxResults(in.MaxResults, maxResults)
	if err != nil {
		return store.Channel{}, nil, 0, err
	}
	c, err := s.channelByARN("channelArn", *in.ChannelArn)
	return c, in.NextToken, max, err
}
