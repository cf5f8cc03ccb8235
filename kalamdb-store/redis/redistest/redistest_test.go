package redistest

import (
	"bufio"
	"net"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// ping sends PING over a raw connection and returns the reply line.
func ping(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("PING\r\n"))
	require.NoError(t, err)
	line, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	return line
}

func TestStartStop(t *testing.T) {
	s, err := Start(Options{Dir: t.TempDir()})
	require.NoError(t, err)
	require.Equal(t, "+PONG\r\n", ping(t, s.Addr))
	require.NoError(t, s.Stop())
	require.NoError(t, s.Stop(), "stopping twice")
	_, err = net.Dial("tcp", s.Addr)
	require.Error(t, err, "nothing listens after Stop")

	_, err = Start(Options{})
	require.ErrorContains(t, err, "Dir is empty")
}

func TestSharedAndPrefixes(t *testing.T) {
	a, b := Shared(t), Shared(t)
	require.Same(t, a, b, "one shared server per process")
	require.Equal(t, "+PONG\r\n", ping(t, a.Addr))
	require.NotEqual(t, FreshPrefix(), FreshPrefix())
}

func TestBadArgumentsFailWithTheServersWords(t *testing.T) {
	_, err := Start(Options{Dir: t.TempDir(), Extra: []string{"--no-such-option", "1"}})
	require.Error(t, err)
	require.Contains(t, err.Error(), "no-such-option")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if err := StopShared(); err != nil {
		code = 1
	}
	os.Exit(code)
}
