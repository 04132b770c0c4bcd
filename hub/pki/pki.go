// Package pki creates and keeps the hub's own certificate authority and the
// server certificate it signs, for the MQTT broker's TLS listener and the
// HTTPS API. Nothing of it is in the repository: the CA is made at the hub's
// first start under its data directory and reused afterwards; the server
// certificate is renewed when it nears its end or lacks a requested name.
//
// Files under Dir:
//
//	ca.pem      the CA certificate (handed to devices at enrolment; pin its SHA-256)
//	ca.key      the CA's private key (0600)
//	server.pem  the server certificate
//	server.key  the server's private key (0600)
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/shequ/shequ/hub/atomicfile"
)

// File names under the PKI directory.
const (
	CAFile         = "ca.pem"
	CAKeyFile      = "ca.key"
	ServerFile     = "server.pem"
	ServerKeyFile  = "server.key"
	caValidity     = 10 * 365 * 24 * time.Hour
	serverValidity = 397 * 24 * time.Hour
	// RenewBefore is how long before its end the server certificate is renewed.
	RenewBefore = 30 * 24 * time.Hour
)

// DefaultNames are the names every server certificate carries.
var DefaultNames = []string{"127.0.0.1", "::1", "localhost"}

// PKI is the hub's CA and server certificate, loaded.
type PKI struct {
	Dir       string
	CA        *x509.Certificate
	CAPEM     []byte
	Server    tls.Certificate // with Leaf set
	caKey     *ecdsa.PrivateKey
	createdCA bool
	renewed   bool
}

// Ensure loads the PKI under dir, creating the CA on first use and the
// server certificate when it is missing, expires within RenewBefore, or
// lacks one of DefaultNames or hostnames. now is the current time.
func Ensure(dir string, hostnames []string, now time.Time) (*PKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: create %s: %w", dir, err)
	}
	p := &PKI{Dir: dir}
	if err := p.loadOrCreateCA(now); err != nil {
		return nil, err
	}
	names := append(slices.Clone(DefaultNames), hostnames...)
	if err := p.loadOrIssueServer(names, now); err != nil {
		return nil, err
	}
	return p, nil
}

// CreatedCA reports whether Ensure created a new CA.
func (p *PKI) CreatedCA() bool { return p.createdCA }

// Renewed reports whether Ensure issued a new server certificate.
func (p *PKI) Renewed() bool { return p.renewed }

// Pin returns the hex SHA-256 of the CA certificate's DER, which devices and
// the CLI compare against what they are told out of band.
func (p *PKI) Pin() string { return Pin(p.CA) }

// Pin returns the hex SHA-256 of a certificate's DER.
func Pin(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// CAPool returns a pool holding only the hub CA.
func (p *PKI) CAPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.CA)
	return pool
}

// ServerTLS returns the TLS configuration of the hub's listeners. The chain
// sent includes the CA certificate, so a device enrolling with a CA pin can
// check the pin during the handshake, before it sends its claim code.
func (p *PKI) ServerTLS() *tls.Config {
	chain := p.Server
	chain.Certificate = append(append([][]byte(nil), p.Server.Certificate...), p.CA.Raw)
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{chain}}
}

// ClientTLS returns a client TLS configuration that trusts only the hub CA.
func (p *PKI) ClientTLS() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: p.CAPool()}
}

// Path returns the path of a file of the PKI directory.
func (p *PKI) Path(name string) string { return filepath.Join(p.Dir, name) }

func (p *PKI) loadOrCreateCA(now time.Time) error {
	certPEM, err := os.ReadFile(p.Path(CAFile))
	if errors.Is(err, os.ErrNotExist) {
		return p.createCA(now)
	}
	if err != nil {
		return fmt.Errorf("pki: read CA: %w", err)
	}
	keyPEM, err := os.ReadFile(p.Path(CAKeyFile))
	if err != nil {
		return fmt.Errorf("pki: read CA key: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("pki: load CA: %w", err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return errors.New("pki: CA key is not ECDSA")
	}
	p.CA, p.CAPEM, p.caKey = pair.Leaf, certPEM, key
	return nil
}

func (p *PKI) createCA(now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki: CA key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "Shequ hub CA", Organization: []string{"Shequ"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("pki: create CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("pki: parse CA: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// The key first: a certificate without its key would be unusable.
	if err := atomicfile.Write(p.Path(CAKeyFile), keyPEM, 0o600); err != nil {
		return err
	}
	if err := atomicfile.Write(p.Path(CAFile), certPEM, 0o644); err != nil {
		return err
	}
	p.CA, p.CAPEM, p.caKey, p.createdCA = cert, certPEM, key, true
	return nil
}

func (p *PKI) loadOrIssueServer(names []string, now time.Time) error {
	certPEM, err := os.ReadFile(p.Path(ServerFile))
	if err == nil {
		keyPEM, kerr := os.ReadFile(p.Path(ServerKeyFile))
		if kerr != nil {
			return fmt.Errorf("pki: read server key: %w", kerr)
		}
		pair, perr := tls.X509KeyPair(certPEM, keyPEM)
		if perr != nil {
			return fmt.Errorf("pki: load server certificate: %w", perr)
		}
		if p.serverFits(pair.Leaf, names, now) {
			p.Server = pair
			return nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("pki: read server certificate: %w", err)
	}
	return p.issueServer(names, now)
}

// serverFits reports whether a server certificate is signed by the current
// CA, valid for long enough and carries every name.
func (p *PKI) serverFits(c *x509.Certificate, names []string, now time.Time) bool {
	if c.CheckSignatureFrom(p.CA) != nil || now.Add(RenewBefore).After(c.NotAfter) || now.Before(c.NotBefore) {
		return false
	}
	for _, n := range names {
		if c.VerifyHostname(n) != nil {
			return false
		}
	}
	return true
}

func (p *PKI) issueServer(names []string, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki: server key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: "Shequ hub", Organization: []string{"Shequ"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     earlier(now.Add(serverValidity), p.CA.NotAfter),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if !slices.Contains(tmpl.DNSNames, n) {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.CA, &key.PublicKey, p.caKey)
	if err != nil {
		return fmt.Errorf("pki: issue server certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("pki: load new server certificate: %w", err)
	}
	if err := atomicfile.Write(p.Path(ServerKeyFile), keyPEM, 0o600); err != nil {
		return err
	}
	if err := atomicfile.Write(p.Path(ServerFile), certPEM, 0o644); err != nil {
		return err
	}
	p.Server, p.renewed = pair, true
	return nil
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func encodeKey(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("pki: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func serial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("pki: random serial: %w", err)
	}
	return n, nil
}
