package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/config"
)

func digest(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:])
}

func TestAuthenticate(t *testing.T) {
	a, err := New([]config.User{
		{ID: "admin", Role: config.RoleAdmin, Token: "admin-token"},
		{ID: "alice", Role: config.RoleUser, TokenSHA256: digest("alice-token")},
	})
	require.NoError(t, err)

	p, err := a.Authenticate("Bearer admin-token")
	require.NoError(t, err)
	assert.Equal(t, Principal{ID: "admin", Role: config.RoleAdmin}, p)
	assert.True(t, p.IsAdmin())

	p, err = a.Authenticate("bearer alice-token")
	require.NoError(t, err)
	assert.Equal(t, "alice", p.ID)
	assert.False(t, p.IsAdmin())

	for header, want := range map[string]error{
		"":                                ErrNoToken,
		"Bearer ":                         ErrNoToken,
		"Bearer    ":                      ErrNoToken,
		"Basic YWxpY2U6eA==":              ErrBadToken,
		"Bearer nope":                     ErrBadToken,
		"Bearer admin-toke":               ErrBadToken,
		"admin-token":                     ErrBadToken,
		"Bearer " + digest("alice-token"): ErrBadToken, // the digest is not the token
	} {
		_, err := a.Authenticate(header)
		assert.ErrorIs(t, err, want, "header %q", header)
	}
}

func TestErrorsNeverCarryTheToken(t *testing.T) {
	a, err := New([]config.User{{ID: "u", Role: config.RoleUser, Token: "right"}})
	require.NoError(t, err)
	_, err = a.Authenticate("Bearer wrong-secret-value")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "wrong-secret-value")
}

func TestNewRejectsBadDigest(t *testing.T) {
	_, err := New([]config.User{{ID: "u", Role: config.RoleUser, TokenSHA256: "zz"}})
	assert.ErrorContains(t, err, "auth.users[0] (u)")
}

func BenchmarkAuthenticate(b *testing.B) {
	users := make([]config.User, 16)
	for i := range users {
		users[i] = config.User{ID: string(rune('a' + i)), Role: config.RoleUser, Token: "token-" + string(rune('a'+i))}
	}
	a, err := New(users)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate("Bearer token-p"); err != nil {
			b.Fatal(err)
		}
	}
}
