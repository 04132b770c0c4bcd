package hub

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shequ/shequ/hub/access"
	"github.com/shequ/shequ/hub/enrol"
	"github.com/shequ/shequ/protocol"
)

// createClaim asks the staff API for a claim code.
func createClaim(t *testing.T, h *Hub, community, kiosk, ttl string) enrol.ClaimCreated {
	t.Helper()
	body := fmt.Sprintf(`{"community":%q`, community)
	if kiosk != "" {
		body += fmt.Sprintf(`,"kiosk":%q`, kiosk)
	}
	if ttl != "" {
		body += fmt.Sprintf(`,"ttl":%q`, ttl)
	}
	code, b := call(t, h, "POST", "/api/v1/claims", body+"}")
	if code != http.StatusCreated {
		t.Fatalf("create claim: %d %s", code, b)
	}
	var c enrol.ClaimCreated
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// enrolRaw posts an enrolment request without the admin token.
func enrolRaw(t *testing.T, h *Hub, body []byte) (int, []byte, http.Header) {
	t.Helper()
	resp, err := h.HTTPClient().Post(h.HTTPURL()+protocol.HubPathEnrol, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, buf.Bytes(), resp.Header
}

func enrolRequest(t *testing.T, code string) []byte {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(protocol.EnrolRequest{ClaimCode: protocol.NormalizeClaimCode(code), PublicKey: protocol.EncodeKey(pub),
		HardwareID: "hw-" + protocol.NewID()[24:], SoftwareVersion: "0.3.0"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// enrolWith enrols a device with a claim code and returns the response.
func enrolWith(t *testing.T, h *Hub, code string) protocol.EnrolResponse {
	t.Helper()
	status, b, _ := enrolRaw(t, h, enrolRequest(t, code))
	if status != http.StatusOK {
		t.Fatalf("enrol: %d %s", status, b)
	}
	r, err := protocol.DecodeEnrolResponse(b)
	if err != nil {
		t.Fatalf("enrol response: %v", err)
	}
	return r
}

// enrolDevice enrols a new device into a kiosk slot.
func enrolDevice(t *testing.T, h *Hub, kiosk string) protocol.EnrolResponse {
	t.Helper()
	k, ok := h.cfg.Org.Kiosk(kiosk)
	if !ok {
		t.Fatalf("no kiosk %s", kiosk)
	}
	return enrolWith(t, h, createClaim(t, h, k.Community, kiosk, "").Code)
}

// deviceOptions are a device's client options: TLS pinned to the CA it
// received, its credentials, client id = username.
func deviceOptions(t *testing.T, cred protocol.EnrolResponse, url string) *paho.ClientOptions {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(cred.CACert)) {
		t.Fatal("enrolment returned no usable CA")
	}
	return paho.NewClientOptions().AddBroker(url).SetClientID(cred.MQTTUsername).
		SetUsername(cred.MQTTUsername).SetPassword(cred.MQTTPassword).
		SetTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}).SetAutoReconnect(false)
}

// hubClientOptions are options with the hub's own (privileged) credentials.
func hubClientOptions(t *testing.T, h *Hub) *paho.ClientOptions {
	t.Helper()
	secret, err := loadOrCreateSecret(filepath.Join(h.cfg.DataDir, HubMQTTFile))
	if err != nil {
		t.Fatal(err)
	}
	return paho.NewClientOptions().AddBroker(h.BrokerURL()).SetUsername(access.HubUser).SetPassword(secret).
		SetTLSConfig(h.sec.pki.ClientTLS()).SetAutoReconnect(false)
}

// verifyDownlink checks a downlink message is signed by the hub's current key.
func verifyDownlink(t *testing.T, h *Hub, payload []byte) {
	t.Helper()
	env, err := protocol.DecodeEnvelope(payload)
	if err != nil {
		t.Errorf("downlink: %v", err)
		return
	}
	// A message signed just before a rotation may arrive just after it:
	// any key of the hub's chain is right, as long as the signature holds.
	for _, l := range h.keys.Chain().Links {
		if l.KID != env.KID {
			continue
		}
		pub, err := protocol.DecodeKey(l.Key)
		if err != nil {
			t.Fatal(err)
		}
		if err := protocol.VerifyEnvelope(env, pub); err != nil {
			t.Errorf("%s does not verify with the hub's key %s: %v", env.Type, l.KID, err)
		}
		return
	}
	t.Errorf("%s signed by %s, a key not in the hub's chain", env.Type, env.KID)
}
