package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-store/etcd/etcdtest"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/redis/redistest"
)

// Several servers on one database: three kalamdb-server processes
// configured with one shared backend (a three-member etcd cluster, then one
// redis-server) serve one database, and any request may go to any of them.
// The flush is left out (no row limit or interval is reached, and none
// runs at shutdown): it does not take leases yet (ADR-018).

// serverCount is how many kalamdb-server processes share the backend.
const serverCount = 3

// noFlush is the [flush] section of servers that never flush.
const noFlush = "default_rows = 100000000\ndefault_interval_seconds = 0\non_shutdown = false\n"

func TestSeveralServers(t *testing.T) {
	t.Run("etcd", func(t *testing.T) {
		c := etcdtest.StartT(t, etcdtest.Options{Members: 3})
		eps := make([]string, len(c.Endpoints()))
		for i, e := range c.Endpoints() {
			eps[i] = strconv.Quote(e)
		}
		severalServers(t, "etcd", fmt.Sprintf("\n[storage.etcd]\nendpoints = [%s]\nprefix = \"e2e\"\n", strings.Join(eps, ", ")))
	})
	t.Run("redis", func(t *testing.T) {
		s := redistest.StartT(t, redistest.Options{})
		severalServers(t, "redis", fmt.Sprintf("\n[storage.redis]\naddr = %q\nkey_prefix = \"e2e\"\n", s.Addr))
	})
}

// severalServers starts serverCount servers on backend, configured by
// section, and runs the checks on them.
func severalServers(t *testing.T, backend, section string) {
	servers := make([]*instance, serverCount)
	for i := range servers {
		// One at a time: each creates what the database lacks (system
		// partitions, the database id) or finds it.
		servers[i] = startServer(t, backend, options{extra: section, flush: noFlush})
	}
	t.Run("OneDatabaseID", func(t *testing.T) { checkOneDatabaseID(t, servers) })
	t.Run("DefinitionsSeenEverywhere", func(t *testing.T) { checkDefinitionsSeenEverywhere(t, servers) })
	t.Run("InsertSameKeys", func(t *testing.T) { checkInsertSameKeys(t, servers) })
	t.Run("Linearizable", func(t *testing.T) { checkLinearizable(t, servers) })
}

// checkOneDatabaseID: every server shows the same database id.
func checkOneDatabaseID(t *testing.T, servers []*instance) {
	var first any
	for i, in := range servers {
		r := expect(t, in.call("GET", "/healthz", "", nil), http.StatusOK, "")
		id := r.Body["database_id"]
		require.NotEmpty(t, id, "server %d", i)
		if i == 0 {
			first = id
		}
		assert.Equal(t, first, id, "server %d", i)
		assert.Contains(t, in.logs.String(), fmt.Sprintf("database_id=%v", id), "server %d logs the id", i)
	}
}

// eventually polls check until it returns nil or the deadline passes;
// servers see other servers' changes at once when a request names them,
// and within a second of their background refresh otherwise.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// status returns an error unless r has status.
func status(r reply, status int) error {
	if r.Status != status {
		return fmt.Errorf("status %d, want %d: %s", r.Status, status, r.Raw)
	}
	return nil
}

const kvPath = "/v1/namespaces/multi/tables/kv"

// checkDefinitionsSeenEverywhere: a namespace, a table and a column created
// through one server are used through the others; a table dropped through
// one takes no more writes through any.
func checkDefinitionsSeenEverywhere(t *testing.T, servers []*instance) {
	a, b, c := servers[0], servers[1], servers[2]
	expect(t, a.call("POST", "/v1/namespaces", adminToken, `{"name":"multi"}`), http.StatusCreated, "")
	for _, in := range servers[1:] {
		eventually(t, "the namespace seen through "+in.base, func() error {
			return status(in.call("GET", "/v1/namespaces/multi", aliceToken, nil), http.StatusOK)
		})
	}
	expect(t, b.call("POST", "/v1/namespaces/multi/tables", adminToken,
		`{"name":"kv","type":"shared","columns":[{"name":"k","type":"int64"},{"name":"v","type":"string","nullable":true}],"primary_key":"k"}`),
		http.StatusCreated, "")
	for _, in := range []*instance{a, c} {
		eventually(t, "the table seen through "+in.base, func() error {
			return status(in.call("GET", kvPath, aliceToken, nil), http.StatusOK)
		})
	}
	expect(t, c.call("POST", kvPath+"/rows", aliceToken, `{"rows":[{"k":1,"v":"through c"}]}`), http.StatusCreated, "")
	r := expect(t, a.call("GET", kvPath+"/rows/1", aliceToken, nil), http.StatusOK, "")
	assert.Equal(t, "through c", r.Body["v"])

	expect(t, a.call("POST", kvPath+"/columns", adminToken, `{"name":"note","type":"string","nullable":true}`), http.StatusOK, "")
	for i, in := range []*instance{b, c} {
		eventually(t, "the column used through "+in.base, func() error {
			return status(in.call("POST", kvPath+"/rows", aliceToken, fmt.Sprintf(`{"rows":[{"k":%d,"v":"x","note":"new"}]}`, 10+i)), http.StatusCreated)
		})
	}

	// A table dropped through one server takes no writes through the
	// others, at once: their writes check the table's partition.
	expect(t, b.call("POST", "/v1/namespaces/multi/tables", adminToken,
		`{"name":"gone","type":"shared","columns":[{"name":"k","type":"int64"}],"primary_key":"k"}`), http.StatusCreated, "")
	for i, in := range servers {
		eventually(t, "the table written through "+in.base, func() error {
			return status(in.call("POST", "/v1/namespaces/multi/tables/gone/rows", aliceToken, fmt.Sprintf(`{"rows":[{"k":%d}]}`, i)), http.StatusCreated)
		})
	}
	expect(t, a.call("DELETE", "/v1/namespaces/multi/tables/gone", adminToken, nil), http.StatusNoContent, "")
	for i, in := range servers {
		expect(t, in.call("POST", "/v1/namespaces/multi/tables/gone/rows", aliceToken, fmt.Sprintf(`{"rows":[{"k":%d}]}`, 100+i)),
			http.StatusNotFound, "TABLE_NOT_FOUND")
	}
}

// result is one request's outcome, without failing the test (clients run
// on goroutines of their own).
type result struct {
	status int
	code   string
	body   map[string]any
	err    error
}

// send sends a request with a JSON body (nil for none) as alice.
func send(base, method, path string, body any) result {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return result{err: err}
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return result{err: err}
	}
	req.Header.Set("Authorization", "Bearer "+aliceToken)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{status: resp.StatusCode, err: err}
	}
	res := result{status: resp.StatusCode}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &res.body); err != nil {
			return result{status: resp.StatusCode, err: fmt.Errorf("response is not JSON: %s", raw)}
		}
		if e, ok := res.body["error"].(map[string]any); ok {
			res.code, _ = e["code"].(string)
		}
	}
	return res
}

// checkInsertSameKeys: clients of every server insert the same primary
// keys at once; each key is inserted exactly once (201), every other
// attempt is 409 DUPLICATE_KEY, and every server reads every key.
func checkInsertSameKeys(t *testing.T, servers []*instance) {
	const keys, perServer = 60, 2
	expect(t, servers[0].call("POST", "/v1/namespaces", adminToken, `{"name":"race"}`), http.StatusCreated, "")
	expect(t, servers[0].call("POST", "/v1/namespaces/race/tables", adminToken,
		`{"name":"ins","type":"shared","columns":[{"name":"k","type":"int64"},{"name":"by","type":"string"}],"primary_key":"k"}`),
		http.StatusCreated, "")
	path := "/v1/namespaces/race/tables/ins/rows"
	created := make([]int, keys)
	duplicates := 0
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, len(servers)*perServer)
	start := make(chan struct{})
	for si, in := range servers {
		for w := range perServer {
			wg.Go(func() {
				<-start
				by := fmt.Sprintf("server %d client %d", si, w)
				rng := rand.New(rand.NewPCG(uint64(si), uint64(w)))
				for _, k := range rng.Perm(keys) {
					res := send(in.base, "POST", path, map[string]any{"rows": []any{map[string]any{"k": k, "by": by}}})
					mu.Lock()
					switch {
					case res.err != nil:
						errs <- fmt.Errorf("%s, key %d: %w", by, k, res.err)
					case res.status == http.StatusCreated:
						created[k]++
					case res.status == http.StatusConflict && res.code == "DUPLICATE_KEY":
						duplicates++
					default:
						errs <- fmt.Errorf("%s, key %d: status %d %s %v", by, k, res.status, res.code, res.body)
					}
					mu.Unlock()
					if res.err != nil || (res.status != http.StatusCreated && res.status != http.StatusConflict) {
						return
					}
				}
			})
		}
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for k, n := range created {
		assert.Equal(t, 1, n, "key %d answered 201 %d times", k, n)
	}
	attempts := keys * len(servers) * perServer
	assert.Equal(t, attempts-keys, duplicates, "every other attempt is a DUPLICATE_KEY")
	for i, in := range servers {
		rows := listAll(t, in, path, aliceToken, 1000)
		assert.Len(t, rows, keys, "server %d reads every key once", i)
	}
	t.Logf("%d concurrent inserts of %d keys through %d servers: %d created, %d DUPLICATE_KEY", attempts, keys, len(servers), keys, duplicates)
}

// The linearizability check: clients of every server read, insert,
// update and delete a few rows at once, and porcupine is asked whether
// some order of their requests, each taking effect at one instant between
// its call and its answer, explains every answer. Each row is a register
// that exists or not and holds a value.

// rowInput is one request of the history.
type rowInput struct {
	op  string // "get", "insert", "update", "delete"
	key int
	val string // insert, update: the value written
}

// rowOutput is what it answered.
type rowOutput struct {
	ok      bool   // insert 201, update 200, delete 204, get 200
	value   string // get: the value read
	unknown bool   // no answer: applied or not
}

type rowState struct {
	exists bool
	value  string
}

// registers is how many rows the linearizability check works on: keys 0
// to registers-1.
const registers = 4

// rowModel is a map of rows, one register per key.
var rowModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		by := make([][]porcupine.Operation, registers)
		for _, op := range history {
			k := op.Input.(rowInput).key
			by[k] = append(by[k], op)
		}
		return slices.DeleteFunc(by, func(ops []porcupine.Operation) bool { return len(ops) == 0 })
	},
	Init: func() any { return rowState{} },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(rowState), input.(rowInput), output.(rowOutput)
		var holds bool // the request succeeds from state s
		next := s
		switch in.op {
		case "get":
			return out.ok == s.exists && (!out.ok || out.value == s.value), s
		case "insert":
			holds, next = !s.exists, rowState{exists: true, value: in.val}
		case "update":
			holds, next = s.exists, rowState{exists: true, value: in.val}
		case "delete":
			holds, next = s.exists, rowState{}
		default:
			return false, s
		}
		switch {
		case out.unknown && holds:
			return true, next
		case out.unknown:
			return true, s
		case out.ok != holds:
			return false, s
		case holds:
			return true, next
		}
		return true, s
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(rowInput), output.(rowOutput)
		if in.op == "get" {
			return fmt.Sprintf("get(%d) -> ok=%v %q", in.key, out.ok, out.value)
		}
		return fmt.Sprintf("%s(%d, %q) -> ok=%v unknown=%v", in.op, in.key, in.val, out.ok, out.unknown)
	},
}

// checkLinearizable: 2 clients per server, 200 requests each, on 4 rows of
// a shared table; the history must be linearizable. The conflicts between
// servers (a write whose check failed, read again and retried) are no
// failure of the backend: no server reports one.
func checkLinearizable(t *testing.T, servers []*instance) {
	const perServer, perClient = 2, 200
	expect(t, servers[1].call("POST", "/v1/namespaces", adminToken, `{"name":"lin"}`), http.StatusCreated, "")
	expect(t, servers[1].call("POST", "/v1/namespaces/lin/tables", adminToken,
		`{"name":"reg","type":"shared","columns":[{"name":"k","type":"int64"},{"name":"v","type":"string"}],"primary_key":"k"}`),
		http.StatusCreated, "")
	path := "/v1/namespaces/lin/tables/reg/rows"
	var (
		mu  sync.Mutex
		ops []porcupine.Operation
		wg  sync.WaitGroup
	)
	clients := len(servers) * perServer
	errs := make([]error, clients)
	start := time.Now()
	for cl := range clients {
		in := servers[cl%len(servers)]
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(cl), 7))
			for i := range perClient {
				k := rng.IntN(registers)
				val := fmt.Sprintf("c%d-%d", cl, i)
				var ri rowInput
				switch rng.IntN(4) {
				case 0:
					ri = rowInput{op: "get", key: k}
				case 1:
					ri = rowInput{op: "insert", key: k, val: val}
				case 2:
					ri = rowInput{op: "update", key: k, val: val}
				default:
					ri = rowInput{op: "delete", key: k}
				}
				call := time.Since(start).Nanoseconds()
				var res result
				want := http.StatusOK
				switch ri.op {
				case "get":
					res = send(in.base, "GET", path+"/"+strconv.Itoa(k), nil)
				case "insert":
					res = send(in.base, "POST", path, map[string]any{"rows": []any{map[string]any{"k": k, "v": val}}})
					want = http.StatusCreated
				case "update":
					res = send(in.base, "PATCH", path+"/"+strconv.Itoa(k), map[string]any{"v": val})
				case "delete":
					res = send(in.base, "DELETE", path+"/"+strconv.Itoa(k), nil)
					want = http.StatusNoContent
				}
				ret := time.Since(start).Nanoseconds()
				var out rowOutput
				refused := "ROW_NOT_FOUND"
				if ri.op == "insert" {
					refused = "DUPLICATE_KEY"
				}
				switch {
				case res.err != nil || res.status >= 500:
					// No answer: the request may or may not have taken
					// effect, at any time after its call.
					if ri.op == "get" {
						continue
					}
					out.unknown, ret = true, math.MaxInt64
				case res.status == want:
					out.ok = true
					if ri.op == "get" {
						out.value, _ = res.body["v"].(string)
					}
				case res.code == refused:
				default:
					errs[cl] = fmt.Errorf("client %d, request %d (%s %d): status %d %s %v", cl, i, ri.op, k, res.status, res.code, res.body)
					return
				}
				mu.Lock()
				ops = append(ops, porcupine.Operation{ClientId: cl, Input: ri, Call: call, Output: out, Return: ret})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	unknown := 0
	for _, op := range ops {
		if op.Output.(rowOutput).unknown {
			unknown++
		}
	}
	res, info := porcupine.CheckOperationsVerbose(rowModel, ops, 30*time.Second)
	if res != porcupine.Ok {
		file := t.TempDir() + "/history.html"
		_ = porcupine.VisualizePath(rowModel, info, file)
		t.Fatalf("porcupine: the history of %d requests is %s (see %s)", len(ops), res, file)
	}
	t.Logf("porcupine: %d requests of %d clients through %d servers, %d of unknown outcome, linearizable (%s)",
		len(ops), clients, len(servers), unknown, time.Since(start).Round(time.Millisecond))
	for i, in := range servers {
		assert.NotContains(t, in.logs.String(), "storage backend writes fail", "server %d", i)
	}
}

// TestRowModelCatchesLostWrites is the negative control of rowModel: a
// read of a value overwritten before it was called, and two inserts of one
// row that both succeed, are not linearizable.
func TestRowModelCatchesLostWrites(t *testing.T) {
	op := func(cl int, in rowInput, out rowOutput, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: cl, Input: in, Output: out, Call: call, Return: ret}
	}
	good := []porcupine.Operation{
		op(0, rowInput{op: "insert", key: 1, val: "a"}, rowOutput{ok: true}, 0, 10),
		op(1, rowInput{op: "get", key: 1}, rowOutput{ok: true, value: "a"}, 5, 15),
		op(0, rowInput{op: "update", key: 1, val: "b"}, rowOutput{ok: true}, 20, 30),
		op(1, rowInput{op: "delete", key: 1}, rowOutput{unknown: true}, 25, math.MaxInt64),
	}
	require.Equal(t, porcupine.Ok, porcupine.CheckOperationsTimeout(rowModel, good, 10*time.Second))
	stale := append(good[:3:3], op(1, rowInput{op: "get", key: 1}, rowOutput{ok: true, value: "a"}, 40, 50))
	require.Equal(t, porcupine.Illegal, porcupine.CheckOperationsTimeout(rowModel, stale, 10*time.Second))
	twice := append(good[:1:1], op(1, rowInput{op: "insert", key: 1, val: "c"}, rowOutput{ok: true}, 12, 18))
	require.Equal(t, porcupine.Illegal, porcupine.CheckOperationsTimeout(rowModel, twice, 10*time.Second))
}
