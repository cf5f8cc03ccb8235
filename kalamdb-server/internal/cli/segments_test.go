package cli

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// config check validates storage.segments_url without contacting the
// store (nothing listens at the endpoint) and never prints credentials.
func TestConfigCheckValidatesTheSegmentsURLOffline(t *testing.T) {
	withURL := func(u string) string {
		return strings.Replace(goodConfig, `backend = "memory"`, `backend = "memory"`+"\nsegments_url = \""+u+"\"", 1)
	}
	p := writeConfig(t, withURL("s3://segments?endpoint=http://127.0.0.1:1&region=eu-west-1&kmskeyid=key-topsecret"))
	code, out, errOut := run(t, nil, "config", "check", "--config", p)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, p+" is valid")
	assert.Contains(t, out, "s3://segments?")
	assert.NotContains(t, out+errOut, "key-topsecret")

	for u, want := range map[string]string{
		"s3://AKIAEXAMPLE:topsecret@segments?region=eu-west-1": "never from the configuration",
		"s3://segments?regoin=eu-west-1":                       `unknown query parameter "regoin"`,
		"s3://?region=eu-west-1":                               "names no bucket",
		"ftp://segments":                                       `scheme "ftp" is not one this server supports`,
	} {
		code, out, errOut := run(t, nil, "config", "check", "--config", writeConfig(t, withURL(u)))
		assert.Equal(t, 1, code, u)
		assert.Contains(t, errOut, "storage.segments_url", u)
		assert.Contains(t, errOut, want, u)
		assert.NotContains(t, out+errOut, "topsecret", u)
	}
}
