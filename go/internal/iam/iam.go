// Package iam exchanges IBM Cloud API keys for IAM bearer tokens and keeps
// them fresh: one token per API key, shared by every bucket reached with
// that key, refreshed in the background before it expires.
package iam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultURL is IBM Cloud's IAM endpoint.
const DefaultURL = "https://iam.cloud.ibm.com"

const grantType = "urn:ibm:params:oauth:grant-type:apikey"

// Token is an IAM access token and its validity.
type Token struct {
	AccessToken string
	Issued      time.Time
	Expires     time.Time
}

// lifetime is how long the token was issued for.
func (t Token) lifetime() time.Duration { return t.Expires.Sub(t.Issued) }

// ErrRejected is returned when IAM refuses the API key (400/401): retrying
// will not help.
var ErrRejected = errors.New("IAM rejected the API key")

// Client fetches tokens from one IAM endpoint.
type Client struct {
	tokenURL string
	http     *http.Client
	now      func() time.Time
}

// NewClient talks to the IAM at baseURL ("https://iam.cloud.ibm.com").
func NewClient(baseURL string, transport http.RoundTripper) *Client {
	return &Client{
		tokenURL: strings.TrimRight(baseURL, "/") + "/identity/token",
		http:     &http.Client{Transport: transport, Timeout: 10 * time.Second},
		now:      time.Now,
	}
}

type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	Expiration  int64  `json:"expiration"`
}

// Fetch exchanges apiKey for a token, once. Errors never contain the key.
func (c *Client) Fetch(ctx context.Context, apiKey string) (Token, error) {
	form := url.Values{"grant_type": {grantType}, "apikey": {apiKey}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return Token{}, fmt.Errorf("iam: build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	issued := c.now()
	resp, err := c.http.Do(req)
	if err != nil {
		return Token{}, fmt.Errorf("iam: %w", redact(err, apiKey))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Token{}, fmt.Errorf("iam: read answer: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnauthorized:
		return Token{}, fmt.Errorf("%w (status %d)", ErrRejected, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return Token{}, fmt.Errorf("iam: status %d", resp.StatusCode)
	}
	var a tokenAnswer
	if err := json.Unmarshal(body, &a); err != nil || a.AccessToken == "" {
		return Token{}, errors.New("iam: answer is not a token")
	}
	t := Token{AccessToken: a.AccessToken, Issued: issued}
	switch {
	case a.Expiration > 0:
		t.Expires = time.Unix(a.Expiration, 0)
	case a.ExpiresIn > 0:
		t.Expires = issued.Add(time.Duration(a.ExpiresIn) * time.Second)
	default:
		return Token{}, errors.New("iam: answer has no expiry")
	}
	if !t.Expires.After(issued) {
		return Token{}, errors.New("iam: token is already expired")
	}
	return t, nil
}

// redact keeps the API key out of an error that quotes the request URL or
// body (net/http errors quote the URL; the key is in the body, but be sure).
func redact(err error, apiKey string) error {
	if apiKey == "" || !strings.Contains(err.Error(), apiKey) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), apiKey, "<api key>"))
}
