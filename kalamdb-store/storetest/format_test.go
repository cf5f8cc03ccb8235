package storetest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

func TestDescribe(t *testing.T) {
	assert.Equal(t, `{Prefix:"" Start:"" ExclusiveStart:false Limit:0 Reverse:false Bulk:false}`,
		describe(store.ScanOptions{}))
	assert.Equal(t, `{Prefix:"a\x00" Start:"\xff" ExclusiveStart:true Limit:3 Reverse:true Bulk:true}`,
		describe(store.ScanOptions{Prefix: []byte("a\x00"), Start: []byte("\xff"), ExclusiveStart: true, Limit: 3, Reverse: true, Bulk: true}))

	long := strings.Repeat("m", 100) + "\x00z"
	got := describe(store.ScanOptions{Start: []byte(long)})
	assert.Equal(t, `{Prefix:"" Start:"mmmmmmmm"…"mmmmmm\x00z" (102 bytes, crc32 `, got[:len(`{Prefix:"" Start:"mmmmmmmm"…"mmmmmm\x00z" (102 bytes, crc32 `)])
	assert.NotEqual(t, got, describe(store.ScanOptions{Start: []byte(strings.Repeat("m", 99) + "n\x00z")}),
		"long keys that differ inside print differently")
}

func TestShowKVs(t *testing.T) {
	assert.Equal(t, []string{`"k"="v"`, `""=""`}, showKVs([]kv{{"k", "v"}, {"", ""}}))
	assert.Len(t, showKVs([]kv{{strings.Repeat("k", 1000), "v"}})[0], len(`"kkkkkkkk"…"kkkkkkkk" (1000 bytes, crc32 00000000)="v"`))
}
