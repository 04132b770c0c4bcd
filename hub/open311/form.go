package open311

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of what a client sends.
const (
	// MaxBody bounds a POST body (application/x-www-form-urlencoded).
	MaxBody = 64 << 10
	// MaxQuery bounds a query string.
	MaxQuery = 16 << 10
	// maxParams bounds the parameters of one body or query.
	maxParams = 64
	// maxListItems bounds a comma-separated list (service_request_id,
	// service_code, status).
	maxListItems = 1000
)

// errBadInput wraps every decoding error (a 400 reply).
var errBadInput = errors.New("bad request")

// decodeParams strictly parses a query string or form body: well-formed
// escapes, no ';' separators, at most maxParams parameters, each name
// accepted by allowed and present at most once, every value valid UTF-8
// without control characters (multiline names may hold line breaks and
// tabs).
func decodeParams(raw string, limit int, allowed func(string) bool, multiline ...string) (map[string]string, error) {
	if len(raw) > limit {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", errBadInput, len(raw), limit)
	}
	out := make(map[string]string)
	if raw == "" {
		return out, nil
	}
	parts := strings.Split(raw, "&")
	if len(parts) > maxParams {
		return nil, fmt.Errorf("%w: %d parameters, limit %d", errBadInput, len(parts), maxParams)
	}
	for _, p := range parts {
		if p == "" {
			continue
		}
		if strings.Contains(p, ";") {
			return nil, fmt.Errorf("%w: ';' is not a parameter separator", errBadInput)
		}
		k, v, _ := strings.Cut(p, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			return nil, fmt.Errorf("%w: parameter name: %v", errBadInput, err)
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return nil, fmt.Errorf("%w: parameter %s: %v", errBadInput, printable(name), err)
		}
		if !allowed(name) {
			return nil, fmt.Errorf("%w: unknown parameter %s", errBadInput, printable(name))
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%w: parameter %s given twice", errBadInput, name)
		}
		if err := checkText(name, val, slices.Contains(multiline, name)); err != nil {
			return nil, err
		}
		out[name] = val
	}
	return out, nil
}

// printable quotes a client's name for an error message, shortened.
func printable(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return fmt.Sprintf("%q", s)
}

func checkText(name, v string, multiline bool) error {
	if !utf8.ValidString(v) {
		return fmt.Errorf("%w: %s is not valid UTF-8", errBadInput, name)
	}
	for _, r := range v {
		if multiline && (r == '\n' || r == '\r' || r == '\t') {
			continue
		}
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %s contains a control character", errBadInput, name)
		}
	}
	return nil
}

// postForm is a decoded POST requests body.
type postForm struct {
	APIKey        string
	Jurisdiction  string
	ServiceCode   string
	Lat, Long     string
	AddressString string
	AddressID     string
	Attributes    map[string]string // by attribute code
	Phone         string
	Description   string
}

// Parameters of POST requests that are checked and then dropped: the hub
// keeps no names, e-mail addresses, device or account ids of complainants,
// and fetches no media from other sites.
var droppedParams = []string{"email", "device_id", "account_id", "first_name", "last_name", "media_url"}

var postParams = []string{"api_key", "jurisdiction_id", "service_code", "lat", "long", "address_string", "address_id",
	"phone", "description"}

// attributeCode returns the code of an "attribute[code]" parameter name.
func attributeCode(name string) (string, bool) {
	code, ok := strings.CutPrefix(name, "attribute[")
	if !ok {
		return "", false
	}
	code, ok = strings.CutSuffix(code, "]")
	if !ok || code == "" || len(code) > 32 {
		return "", false
	}
	for _, r := range code {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return "", false
		}
	}
	return code, true
}

// decodePostForm strictly decodes a POST requests body. It checks the
// shape of parameters, not their meaning (see Server.createRequest).
func decodePostForm(body []byte) (postForm, error) {
	allowed := func(n string) bool {
		_, attr := attributeCode(n)
		return attr || slices.Contains(postParams, n) || slices.Contains(droppedParams, n)
	}
	p, err := decodeParams(string(body), MaxBody, allowed, "description", "address_string")
	if err != nil {
		return postForm{}, err
	}
	for _, n := range droppedParams {
		limit := maxNameOrEmail
		if n == "media_url" {
			limit = maxMediaURL
		}
		if utf8.RuneCountInString(p[n]) > limit {
			return postForm{}, fmt.Errorf("%w: %s has more than %d characters", errBadInput, n, limit)
		}
	}
	f := postForm{
		APIKey: p["api_key"], Jurisdiction: p["jurisdiction_id"], ServiceCode: p["service_code"],
		Lat: p["lat"], Long: p["long"], AddressString: p["address_string"], AddressID: p["address_id"],
		Phone: p["phone"], Description: p["description"], Attributes: map[string]string{},
	}
	for n, v := range p {
		if code, ok := attributeCode(n); ok {
			if utf8.RuneCountInString(v) > maxAttributeLen {
				return postForm{}, fmt.Errorf("%w: attribute[%s] has more than %d characters", errBadInput, code, maxAttributeLen)
			}
			f.Attributes[code] = v
		}
	}
	return f, nil
}

// decodeQuery strictly decodes a GET query with the named parameters.
func decodeQuery(raw string, names ...string) (map[string]string, error) {
	return decodeParams(raw, MaxQuery, func(n string) bool { return slices.Contains(names, n) })
}

// splitList splits a comma-separated list, rejecting empty items and lists
// longer than maxListItems. An empty string is an empty list.
func splitList(name, v string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	items := strings.Split(v, ",")
	if len(items) > maxListItems {
		return nil, fmt.Errorf("%w: %s lists %d items, limit %d", errBadInput, name, len(items), maxListItems)
	}
	for _, it := range items {
		if strings.TrimSpace(it) == "" {
			return nil, fmt.Errorf("%w: %s has an empty item", errBadInput, name)
		}
	}
	for i := range items {
		items[i] = strings.TrimSpace(items[i])
	}
	slices.Sort(items)
	return slices.Compact(items), nil
}
