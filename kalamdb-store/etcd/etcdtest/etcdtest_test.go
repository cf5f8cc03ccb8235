package etcdtest

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestStartKillRestart(t *testing.T) {
	c, err := Start(Options{Members: 3, Dir: TempDir(t)})
	require.NoError(t, err)
	defer c.Stop()
	require.Len(t, c.Endpoints(), 3)
	for _, m := range c.Members {
		require.True(t, healthy(m.MetricsURL), "%s serves", m.Name)
	}
	m := c.Members[1]
	require.NoError(t, m.Kill())
	require.False(t, m.Running())
	require.False(t, healthy(m.MetricsURL), "a killed member does not answer")
	require.NoError(t, c.Members[0].waitReady(time.Minute), "two of three members keep a quorum (after an election)")
	require.NoError(t, m.Restart())
	require.True(t, healthy(m.MetricsURL), "a restarted member rejoins on its data")
	require.ErrorContains(t, m.Restart(), "is running")
	require.NoError(t, c.Stop())
	require.NoError(t, c.Stop(), "stopping twice")
	require.False(t, healthy(c.Members[0].MetricsURL), "nothing answers after Stop")

	_, err = Start(Options{})
	require.ErrorContains(t, err, "Dir is empty")
}

func TestMissingBinaryFailsWithInstallHint(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Start(Options{Dir: t.TempDir()})
	require.EqualError(t, err, InstallHint)
	require.Contains(t, InstallHint, "apt-get install etcd-server")
}

func TestBadArgumentsFailWithTheServersWords(t *testing.T) {
	_, err := Start(Options{Dir: TempDir(t), Extra: []string{"--no-such-option=1"}})
	require.Error(t, err)
	require.Contains(t, err.Error(), "no-such-option")
}

func TestSharedAndPrefixes(t *testing.T) {
	a, b := Shared(t), Shared(t)
	require.Same(t, a, b, "one shared cluster per process")
	require.Len(t, a.Members, 3)
	require.NotEqual(t, FreshPrefix(), FreshPrefix())
}

func TestMain(m *testing.M) {
	code := m.Run()
	if err := StopShared(); err != nil {
		code = 1
	}
	os.Exit(code)
}
