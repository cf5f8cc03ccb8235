package store_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

func TestCheckOperations(t *testing.T) {
	p := store.MustPartition("p")
	absent, value := store.CheckAbsentOp(p, []byte("k")), store.CheckValueOp(p, []byte("k"), []byte("v"))
	assert.Equal(t, "check-absent", absent.Kind.String())
	assert.Equal(t, "check-value", value.Kind.String())
	assert.True(t, absent.Kind.IsCheck())
	assert.True(t, value.Kind.IsCheck())
	for _, k := range []store.OpKind{store.OpPut, store.OpDelete, store.OpDeleteRange} {
		assert.False(t, k.IsCheck(), "%v", k)
	}
	require.NoError(t, absent.Validate())
	require.NoError(t, value.Validate())
	require.NoError(t, store.CheckValueOp(p, []byte("k"), nil).Validate(), "an empty value is a value")

	err := store.CheckAbsentOp(p, nil).Validate()
	require.ErrorIs(t, err, store.ErrInvalidArgument)
	assert.ErrorContains(t, err, "check-absent operation")
	err = store.CheckValueOp(p, []byte("k"), make([]byte, store.MaxValueSize+1)).Validate()
	require.ErrorIs(t, err, store.ErrInvalidArgument)
	assert.ErrorContains(t, err, "check-value operation")
	require.ErrorIs(t, store.Operation{Kind: store.OpCheckValue + 1, Partition: p, Key: []byte("k")}.Validate(), store.ErrInvalidArgument)

	put := store.PutOp(p, []byte("k"), []byte("v"))
	assert.False(t, store.HasChecks([]store.Operation{put, store.DeleteOp(p, []byte("k"))}))
	assert.True(t, store.HasChecks([]store.Operation{put, value}))
	// Checks count towards the batch limits: their keys and values too.
	assert.Equal(t, 1+(1+1), store.BatchBytes([]store.Operation{absent, value}))
	require.ErrorIs(t, store.Capabilities{MaxBatchOps: 1}.CheckBatch([]store.Operation{put, absent}), store.ErrInvalidArgument)
}

func TestEvalChecks(t *testing.T) {
	p := store.MustPartition("p")
	state := map[string]string{"a": "1", "e": ""}
	read := func(ops []store.Operation) func(int) ([]byte, bool, error) {
		return func(i int) ([]byte, bool, error) {
			v, ok := state[string(ops[i].Key)]
			return []byte(v), ok, nil
		}
	}
	cases := []struct {
		name   string
		ops    []store.Operation
		index  int // -1: every check holds
		exists bool
	}{
		{"no checks", []store.Operation{store.PutOp(p, []byte("a"), []byte("2"))}, -1, false},
		{"absent holds", []store.Operation{store.CheckAbsentOp(p, []byte("b"))}, -1, false},
		{"absent fails", []store.Operation{store.PutOp(p, []byte("x"), nil), store.CheckAbsentOp(p, []byte("a"))}, 1, true},
		{"absent fails on an empty value", []store.Operation{store.CheckAbsentOp(p, []byte("e"))}, 0, true},
		{"value holds", []store.Operation{store.CheckValueOp(p, []byte("a"), []byte("1"))}, -1, false},
		{"empty value holds", []store.Operation{store.CheckValueOp(p, []byte("e"), nil)}, -1, false},
		{"value differs", []store.Operation{store.CheckValueOp(p, []byte("a"), []byte("2"))}, 0, true},
		{"value missing", []store.Operation{store.CheckValueOp(p, []byte("b"), nil)}, 0, false},
		{"first failure wins", []store.Operation{
			store.CheckValueOp(p, []byte("a"), []byte("1")), store.CheckValueOp(p, []byte("b"), nil), store.CheckAbsentOp(p, []byte("a")),
		}, 1, false},
	}
	for _, c := range cases {
		err := store.EvalChecks(c.ops, read(c.ops))
		if c.index < 0 {
			require.NoError(t, err, c.name)
			continue
		}
		require.ErrorIs(t, err, store.ErrConditionFailed, c.name)
		var ce *store.ConditionError
		require.ErrorAs(t, err, &ce, c.name)
		assert.Equal(t, c.index, ce.Index, c.name)
		assert.Equal(t, c.exists, ce.Exists, c.name)
		assert.Equal(t, c.ops[c.index].Kind, ce.Kind, c.name)
	}

	boom := errors.New("disk on fire")
	err := store.EvalChecks([]store.Operation{store.CheckAbsentOp(p, []byte("a"))}, func(int) ([]byte, bool, error) { return nil, false, boom })
	require.ErrorIs(t, err, boom, "a read error is returned as it is")
	require.NotErrorIs(t, err, store.ErrConditionFailed)
}

func TestConditionErrorMessage(t *testing.T) {
	p := store.MustPartition("users")
	key := []byte("id\x007")
	err := store.NewConditionError(3, store.CheckAbsentOp(p, key), true)
	key[0] = 'X' // the error keeps its own copy
	assert.Equal(t, `kalamdb-store: condition failed: batch operation 3 (check-absent) on key "id\x007" of partition "users": the key exists`, err.Error())
	assert.ErrorContains(t, store.NewConditionError(0, store.CheckValueOp(p, []byte("k"), nil), true), "the key holds another value")
	assert.ErrorContains(t, store.NewConditionError(0, store.CheckValueOp(p, []byte("k"), nil), false), "the key is missing")
	assert.True(t, errors.Is(err, store.ErrConditionFailed))
}
