package resident

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shequ/shequ/protocol"
)

// Errors of the form decoder.
var (
	// errTooLarge: the form has more than MaxUpload bytes.
	errTooLarge = errors.New("resident: form too large")
	// errBadForm: the body is not a multipart form of the report page
	// (malformed, a text field too long or repeated, too many parts).
	errBadForm = errors.New("resident: malformed form")
)

// Decoder limits.
const (
	maxField = 8 << 10 // bytes of one text field
	maxParts = 32
	// maxFileName bounds a photo's file name as shown back in a message.
	maxFileName = 40
)

// Names of the report form's fields.
const (
	fCommunity   = "c"
	fKiosk       = "k"
	fToken       = "token"
	fIssued      = "ts"
	fSig         = "sig"
	fKind        = "kind"
	fCategory    = "category"
	fBuilding    = "building"
	fUnit        = "unit"
	fRoom        = "room"
	fDescription = "description"
	fPhone       = "phone"
	fPhoto       = "photo"
	// fHoneypot is hidden by CSS; people leave it empty, form-filling
	// robots fill it in.
	fHoneypot = "website"
)

// textFields are the text fields the decoder keeps; others are skipped.
var textFields = []string{fCommunity, fKiosk, fToken, fIssued, fSig, fKind, fCategory, fBuilding, fUnit, fRoom,
	fDescription, fPhone, fHoneypot}

// upload is one photo as sent.
type upload struct {
	Name     string // the file name, shortened, for messages
	Data     []byte // nil when TooLarge
	TooLarge bool
}

// submission is a decoded report form.
type submission struct {
	Values map[string]string
	Photos []upload
	// TooManyPhotos: more than MaxPhotos non-empty photos were sent; the
	// extra ones were skipped.
	TooManyPhotos bool
}

// capped reads at most n bytes from r, then fails with errTooLarge.
type capped struct {
	r io.Reader
	n int64
}

func (c *capped) Read(p []byte) (int, error) {
	if c.n <= 0 {
		// Is there more? One byte tells.
		var one [1]byte
		if k, err := c.r.Read(one[:]); k > 0 {
			return 0, errTooLarge
		} else if err != nil {
			return 0, err
		}
		return 0, nil
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	k, err := c.r.Read(p)
	c.n -= int64(k)
	return k, err
}

// decodeForm reads a report form: a multipart body with the boundary, at
// most MaxUpload bytes, text fields of at most maxField bytes (each at
// most once), photos of at most MaxPhotoBytes (a larger one is marked
// TooLarge and skipped), at most maxParts parts. Empty file inputs are
// ignored.
func decodeForm(body io.Reader, boundary string) (submission, error) {
	s := submission{Values: map[string]string{}}
	mr := multipart.NewReader(&capped{r: body, n: MaxUpload}, boundary)
	for i := 0; ; i++ {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return s, nil
		}
		if err != nil {
			return s, formErr(err)
		}
		if i >= maxParts {
			return s, fmt.Errorf("%w: more than %d parts", errBadForm, maxParts)
		}
		if err := s.readPart(part); err != nil {
			return s, err
		}
	}
}

func formErr(err error) error {
	if errors.Is(err, errTooLarge) {
		return err
	}
	return fmt.Errorf("%w: %w", errBadForm, err)
}

func (s *submission) readPart(part *multipart.Part) error {
	name := part.FormName()
	switch {
	case name == fPhoto:
		return s.readPhoto(part)
	case contains(textFields, name):
		if _, dup := s.Values[name]; dup {
			return fmt.Errorf("%w: field %q repeated", errBadForm, name)
		}
		b, err := io.ReadAll(io.LimitReader(part, maxField+1))
		if err != nil {
			return formErr(err)
		}
		if len(b) > maxField {
			return fmt.Errorf("%w: field %q longer than %d bytes", errBadForm, name, maxField)
		}
		if !utf8.Valid(b) {
			return fmt.Errorf("%w: field %q is not UTF-8", errBadForm, name)
		}
		s.Values[name] = string(b)
		return nil
	}
	if _, err := io.Copy(io.Discard, part); err != nil {
		return formErr(err)
	}
	return nil
}

func (s *submission) readPhoto(part *multipart.Part) error {
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(part, MaxPhotoBytes+1))
	if err != nil {
		return formErr(err)
	}
	if n == 0 {
		return nil // an empty file input
	}
	u := upload{Name: shortName(part.FileName())}
	if n > MaxPhotoBytes {
		u.TooLarge = true
		if _, err := io.Copy(io.Discard, part); err != nil {
			return formErr(err)
		}
	} else {
		u.Data = buf.Bytes()
	}
	if len(s.Photos) >= MaxPhotos {
		s.TooManyPhotos = true
		return nil
	}
	s.Photos = append(s.Photos, u)
	return nil
}

// shortName is a file name fit to show: its base, valid UTF-8, at most
// maxFileName characters.
func shortName(n string) string {
	n = strings.ToValidUTF8(path.Base(strings.ReplaceAll(n, `\`, "/")), "")
	if n == "." || n == "/" {
		n = ""
	}
	if r := []rune(n); len(r) > maxFileName {
		n = string(r[:maxFileName-1]) + "…"
	}
	return n
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// formToken is the signed identity of one served form.
type formToken struct {
	Community, Kiosk string
	ID               string // random, hex; the case's source reference
	Issued           int64  // Unix seconds
	Sig              string
}

// newToken issues a token for a form of community (and kiosk) now.
func (p *Pages) newToken(community, kiosk string, now time.Time) formToken {
	var b [16]byte
	rand.Read(b[:]) // crypto/rand.Read never returns an error
	t := formToken{Community: community, Kiosk: kiosk, ID: hex.EncodeToString(b[:]), Issued: now.Unix()}
	t.Sig = p.sign("form", t.Community, t.Kiosk, t.ID, strconv.FormatInt(t.Issued, 10))
	return t
}

// tokenOf reads the token fields of a submission and checks the signature.
func (p *Pages) tokenOf(v map[string]string) (formToken, bool) {
	t := formToken{Community: v[fCommunity], Kiosk: v[fKiosk], ID: v[fToken], Sig: v[fSig]}
	issued, err := strconv.ParseInt(v[fIssued], 10, 64)
	if err != nil || len(t.ID) != 32 || strconv.FormatInt(issued, 10) != v[fIssued] {
		return t, false
	}
	if _, err := hex.DecodeString(t.ID); err != nil {
		return t, false
	}
	t.Issued = issued
	want := p.sign("form", t.Community, t.Kiosk, t.ID, v[fIssued])
	return t, hmac.Equal([]byte(want), []byte(t.Sig))
}

// followKey is the key of a ticket's follow link.
func (p *Pages) followKey(ticket string) string {
	return p.sign("follow", ticket)[:22] // 132 bits
}

// validKey reports whether key is the follow key of ticket.
func (p *Pages) validKey(ticket, key string) bool {
	return key != "" && hmac.Equal([]byte(p.followKey(ticket)), []byte(key))
}

// sign is the base64url HMAC-SHA256 of a purpose and fields, each ended by
// a NUL so that no two field lists sign alike.
func (p *Pages) sign(purpose string, fields ...string) string {
	m := hmac.New(sha256.New, p.cfg.Secret)
	m.Write([]byte("shequ-resident-" + purpose + "\x00"))
	for _, f := range fields {
		m.Write([]byte(f))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// report is a validated report.
type report struct {
	Kind        protocol.FeedbackKind
	Category    protocol.FeedbackCategory
	Where       protocol.Where
	Description string
	Phone       string // digits only
}

// validate checks the report fields of a submission and returns the
// report, or the problems as messages in lang.
func validate(v map[string]string, lang Lang) (report, []string) {
	var (
		r    report
		errs []string
	)
	r.Kind = protocol.FeedbackKind(v[fKind])
	if !contains(protocol.FeedbackKinds, r.Kind) {
		errs = append(errs, T(lang, "invalid.kind"))
	}
	r.Category = protocol.FeedbackCategory(v[fCategory])
	if !contains(protocol.FeedbackCategories, r.Category) {
		errs = append(errs, T(lang, "invalid.category"))
	}
	r.Where = protocol.Where{Building: strings.TrimSpace(v[fBuilding]), Unit: strings.TrimSpace(v[fUnit]),
		Room: strings.TrimSpace(v[fRoom])}
	if r.Where.Validate() != nil {
		errs = append(errs, Tf(lang, "invalid.where", protocol.MaxWhereField))
	}
	r.Description = strings.TrimSpace(strings.ReplaceAll(v[fDescription], "\r\n", "\n"))
	switch n := utf8.RuneCountInString(r.Description); {
	case n == 0:
		errs = append(errs, T(lang, "invalid.description"))
	case n > protocol.MaxDescription:
		errs = append(errs, Tf(lang, "invalid.description.long", protocol.MaxDescription, n))
	}
	phone, ok := normalizePhone(v[fPhone])
	if !ok {
		errs = append(errs, T(lang, "invalid.phone"))
	}
	r.Phone = phone
	return r, errs
}

// normalizePhone checks an optional phone number and returns its digits:
// empty; a mainland mobile number (11 digits starting 13–19, optionally
// after +86 or 86); a landline with its area code (0 + 2 or 3 digits, then
// 7 or 8 digits not starting with 0 or 1, e.g. 021-64381234); or a local
// landline (7 or 8 digits not starting with 0 or 1). Spaces, hyphens and
// parentheses are ignored.
func normalizePhone(s string) (string, bool) {
	var b strings.Builder
	for i, r := range strings.TrimSpace(s) {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '(' || r == ')':
		case r == '+' && i == 0:
		default:
			return "", false
		}
	}
	d := b.String()
	if strings.HasPrefix(strings.TrimSpace(s), "+") && !strings.HasPrefix(d, "86") {
		return "", false
	}
	if len(d) == 13 && strings.HasPrefix(d, "86") {
		d = d[2:]
	}
	digitsFrom := func(s string, lo, hi int) bool { return len(s) >= lo && len(s) <= hi && s[0] >= '2' }
	switch {
	case d == "" && strings.TrimSpace(s) == "":
		return "", true
	case len(d) == 11 && d[0] == '1' && d[1] >= '3':
		return d, true
	case len(d) >= 10 && d[0] == '0' && d[1] != '0':
		// Area codes: 2 digits after the 0 for 010 and 02x, else 3.
		area := 3
		if d[1] == '1' || d[1] == '2' {
			area = 2
		}
		if digitsFrom(d[1+area:], 7, 8) {
			return d, true
		}
	case digitsFrom(d, 7, 8):
		return d, true
	}
	return "", false
}
