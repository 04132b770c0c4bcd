package media

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/shequ/shequ/protocol"
)

// HTTPConfig configures HTTP, the requester that fetches media over HTTPS
// from the hub. Zero values mean the defaults.
type HTTPConfig struct {
	BaseURL  string        // required: the hub's https://host:port
	CACert   string        // PEM of the pinned hub CA; required for https
	Username string        // the device's MQTT username (HTTP basic auth)
	Password string        // the device's MQTT password
	Timeout  time.Duration // per request; default 60s
}

// HTTP fetches manifests from BaseURL/media/{sha}/manifest and chunks as
// byte ranges of BaseURL/media/{sha}, delivering them to a cache. Each
// request runs in its own goroutine; the cache bounds how many are in
// flight (Window per file).
type HTTP struct {
	cfg    HTTPConfig
	ctx    context.Context
	client *http.Client
	c      *Cache
}

// NewHTTP returns an HTTP requester delivering to c; its requests end
// when ctx is done.
func NewHTTP(ctx context.Context, cfg HTTPConfig, c *Cache) (*HTTP, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("media: http base url %q: want https://host:port", cfg.BaseURL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	tr := &http.Transport{MaxIdleConnsPerHost: protocol.MaxRequestChunks, ResponseHeaderTimeout: cfg.Timeout}
	if u.Scheme == "https" {
		ca, err := protocol.ParseCACert([]byte(cfg.CACert))
		if err != nil {
			return nil, fmt.Errorf("media: pinned CA: %w", err)
		}
		pool := x509.NewCertPool()
		pool.AddCert(ca)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	return &HTTP{cfg: cfg, ctx: ctx, client: &http.Client{Transport: tr, Timeout: cfg.Timeout}, c: c}, nil
}

// RequestManifest fetches a manifest in the background.
func (h *HTTP) RequestManifest(sha string) error {
	go func() {
		data, err := h.get("/media/"+sha+"/manifest", "", protocol.MaxManifestSize)
		if err != nil {
			h.c.log.Warn("manifest not fetched", "sha256", sha, "err", err)
			return
		}
		h.c.DeliverManifest(data)
	}()
	return nil
}

// RequestChunks fetches chunks in the background, one range each. The
// chunk size is the one of the manifest the cache holds for sha.
func (h *HTTP) RequestChunks(sha string, idx []int) error {
	size := h.c.chunkSize(sha)
	if size <= 0 {
		return fmt.Errorf("media: no manifest for %s", sha)
	}
	for _, i := range idx {
		go func() {
			from := int64(i) * int64(size)
			data, err := h.get("/media/"+sha, fmt.Sprintf("bytes=%d-%d", from, from+int64(size)-1), int64(size))
			if err != nil {
				h.c.log.Warn("chunk not fetched", "sha256", sha, "index", i, "err", err)
				return
			}
			h.c.DeliverChunk(protocol.Chunk{SHA256: sha, Index: i, Data: data})
		}()
	}
	return nil
}

func (h *HTTP) get(path, rng string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(h.ctx, http.MethodGet, h.cfg.BaseURL+path, nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(h.cfg.Username, h.cfg.Password)
	want := http.StatusOK
	if rng != "" {
		req.Header.Set("Range", rng)
		want = http.StatusPartialContent
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close() //nolint:errcheck // read to the end or failed
	if resp.StatusCode != want {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, errors.New("GET " + path + ": response too large")
	}
	return data, nil
}
