package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// sidecarClient calls qrphgate's modulus_api on loopback: plain JSON, no
// credentials (the sidecar holds them).
type sidecarClient struct {
	base string
	http *http.Client
}

// qr is the create-QR answer.
type qr struct {
	ID        string `json:"id"`
	QRBody    string `json:"qrBody"`
	ExpiresAt string `json:"expiresAt"`
}

// sidecarError is an error answer: the status and the sidecar's stable code.
type sidecarError struct {
	Status  int
	Code    string
	Message string
}

func (e *sidecarError) Error() string {
	return fmt.Sprintf("the sidecar answered %d %s: %s", e.Status, e.Code, e.Message)
}

// createQR is POST /v1/pay/qr.
func (c *sidecarClient) createQR(amount, currency, reference string) (qr, error) {
	body, _ := json.Marshal(map[string]string{
		"amount": amount, "currency": currency, "merchantReferenceNumber": reference,
	})
	resp, err := c.http.Post(c.base+"/v1/pay/qr", "application/json", bytes.NewReader(body))
	if err != nil {
		return qr{}, fmt.Errorf("the sidecar cannot be reached: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return qr{}, fmt.Errorf("reading the sidecar's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		return qr{}, &sidecarError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	var q qr
	if err := json.Unmarshal(data, &q); err != nil || q.ID == "" || q.QRBody == "" {
		return qr{}, fmt.Errorf("the sidecar's answer has no id or qrBody")
	}
	return q, nil
}
