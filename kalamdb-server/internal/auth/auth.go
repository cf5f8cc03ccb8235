// Package auth authenticates API callers by bearer token.
//
// Tokens are never kept in clear: each configured user is held as the
// SHA-256 of their token, and a presented token is hashed and compared with
// every user's digest in constant time, so neither the comparison nor the
// position of the matching user shows in the response time. Nothing in this
// package logs or returns a token.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/config"
)

// Principal is an authenticated caller.
type Principal struct {
	// ID is the user's id from the configuration.
	ID string
	// Role is config.RoleAdmin or config.RoleUser.
	Role string
}

// IsAdmin reports whether the caller may run DDL and flushes.
func (p Principal) IsAdmin() bool { return p.Role == config.RoleAdmin }

// Errors returned by Authenticate.
var (
	// ErrNoToken reports a request without a bearer token.
	ErrNoToken = errors.New("missing bearer token: send Authorization: Bearer <token>")
	// ErrBadToken reports a token that matches no user, or a malformed
	// Authorization header.
	ErrBadToken = errors.New("invalid bearer token")
)

type user struct {
	digest [sha256.Size]byte
	p      Principal
}

// Authenticator maps bearer tokens to principals. It is safe for concurrent
// use.
type Authenticator struct {
	users []user
}

// New builds an Authenticator from the configured users, which
// config.Load has already validated.
func New(users []config.User) (*Authenticator, error) {
	a := &Authenticator{users: make([]user, 0, len(users))}
	for i, u := range users {
		raw, err := hex.DecodeString(u.Digest())
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("auth.users[%d] (%s): token_sha256 is not a hex SHA-256", i, u.ID)
		}
		var d [sha256.Size]byte
		copy(d[:], raw)
		a.users = append(a.users, user{digest: d, p: Principal{ID: u.ID, Role: u.Role}})
	}
	return a, nil
}

// Authenticate returns the principal whose token the Authorization header
// carries ("Bearer <token>", the scheme in any case).
func (a *Authenticator) Authenticate(header string) (Principal, error) {
	if header == "" {
		return Principal{}, ErrNoToken
	}
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return Principal{}, ErrBadToken
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return Principal{}, ErrNoToken
	}
	return a.AuthenticateToken(token)
}

// AuthenticateToken returns the principal whose token is token.
func (a *Authenticator) AuthenticateToken(token string) (Principal, error) {
	d := sha256.Sum256([]byte(token))
	found := -1
	for i := range a.users {
		// Compare with every user, without stopping at a match.
		if subtle.ConstantTimeCompare(d[:], a.users[i].digest[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Principal{}, ErrBadToken
	}
	return a.users[found].p, nil
}
