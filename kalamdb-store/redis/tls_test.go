package redis

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/redis/redistest"
)

// writeTLSFiles creates a certificate authority and a server certificate it
// signs for "redis.test" and 127.0.0.1, and writes ca.pem, server.pem and
// server.key into dir.
func writeTLSFiles(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kalamdb test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "redis.test"},
		DNSNames:     []string{"redis.test"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caTmpl, &srvKey.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	require.NoError(t, err)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server.key", "EC PRIVATE KEY", keyDER)
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := writeTLSFiles(t, dir)
	srv := redistest.StartT(t, redistest.Options{TLSCertFile: cert, TLSKeyFile: key})
	ctx := context.Background()
	open := func(mutate func(*Config)) (store.StorageBackend, error) {
		c := DefaultConfig()
		c.Addr, c.TLS, c.TLSCAFile = srv.Addr, true, ca
		c.DialTimeout = Duration(2 * time.Second)
		mutate(&c)
		return OpenWith(ctx, c)
	}

	for name, mutate := range map[string]func(*Config){
		"server name from addr": func(c *Config) {},
		"explicit server name":  func(c *Config) { c.TLSServerName = "redis.test" },
	} {
		b, err := open(mutate)
		require.NoError(t, err, name)
		p := store.MustPartition("p")
		require.NoError(t, b.CreatePartition(ctx, p), name)
		require.NoError(t, b.Put(ctx, p, []byte("k"), []byte("over tls")), name)
		v, err := b.Get(ctx, p, []byte("k"))
		require.NoError(t, err, name)
		require.Equal(t, "over tls", string(v), name)
		require.NoError(t, b.Close(), name)
	}

	_, err := open(func(c *Config) { c.TLSServerName = "other.test" })
	require.ErrorContains(t, err, "certificate", "a certificate for another name is refused")
	_, err = open(func(c *Config) { c.TLSCAFile = "" })
	require.ErrorContains(t, err, "certificate", "a certificate from an unknown authority is refused")
	_, err = open(func(c *Config) { c.TLS, c.TLSCAFile = false, "" })
	require.Error(t, err, "plain TCP to a TLS port fails")
}
