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
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/objstore/s3test"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/etcd/etcdtest"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/redis/redistest"
)

// Several servers on one database: three kalamdb-server processes
// configured with one shared backend (a three-member etcd cluster, then one
// redis-server) and one bucket of an S3 server serve one database, and any
// request may go to any of them. Flushes and compactions are sent to any
// server while the clients run; the flush threshold is never reached, so
// the tests choose when they run.

// serverCount is how many kalamdb-server processes share the backend.
const serverCount = 3

// noFlush is the [flush] section of servers that never flush by
// themselves.
const noFlush = "default_rows = 100000000\ndefault_interval_seconds = 0\non_shutdown = false\n"

// leaseTTL is the servers' storage.lease_ttl: shorter than the default,
// so that the work of a killed server is taken over sooner.
const leaseTTL = 6 * time.Second

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
// section, with their segments in one bucket behind a fault proxy, and
// runs the checks on them.
func severalServers(t *testing.T, backend, section string) {
	proxy, bucket := proxiedBucket(t)
	servers := make([]*instance, serverCount)
	for i := range servers {
		// One at a time: each creates what the database lacks (system
		// partitions, the database id) or finds it.
		servers[i] = startServer(t, backend, options{extra: section, flush: noFlush, segmentsURL: bucket, env: s3test.Env(),
			storage: fmt.Sprintf("lease_ttl = %q", leaseTTL)})
	}
	t.Run("OneDatabaseID", func(t *testing.T) { checkOneDatabaseID(t, servers) })
	t.Run("DefinitionsSeenEverywhere", func(t *testing.T) { checkDefinitionsSeenEverywhere(t, servers) })
	t.Run("InsertSameKeys", func(t *testing.T) { checkInsertSameKeys(t, servers) })
	t.Run("Linearizable", func(t *testing.T) { checkLinearizable(t, servers) })
	t.Run("PagesAgree", func(t *testing.T) { checkPagesAgree(t, servers) })
	t.Run("StreamTailedThroughEveryServer", func(t *testing.T) { checkStreamTail(t, servers) })
	// Last: it kills the first server.
	t.Run("KillDuringFlush", func(t *testing.T) { checkKillDuringFlush(t, servers, proxy) })
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
	eventuallyWithin(t, 5*time.Second, what, check)
}

// eventuallyWithin is eventually with a deadline of d.
func eventuallyWithin(t *testing.T, d time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, d, err)
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

	// A table dropped and created again through one server is used
	// through the others at once, each write landing once in the new one.
	const again = `{"name":"again","type":"shared","columns":[{"name":"k","type":"int64"}],"primary_key":"k"}`
	path := "/v1/namespaces/multi/tables/again"
	expect(t, a.call("POST", "/v1/namespaces/multi/tables", adminToken, again), http.StatusCreated, "")
	for i, in := range servers {
		eventually(t, "the table written through "+in.base, func() error {
			return status(in.call("POST", path+"/rows", aliceToken, fmt.Sprintf(`{"rows":[{"k":%d}]}`, i)), http.StatusCreated)
		})
	}
	expect(t, a.call("DELETE", path, adminToken, nil), http.StatusNoContent, "")
	expect(t, a.call("POST", "/v1/namespaces/multi/tables", adminToken, again), http.StatusCreated, "")
	for i, in := range servers {
		expect(t, in.call("POST", path+"/rows", aliceToken, fmt.Sprintf(`{"rows":[{"k":%d}]}`, 10+i)), http.StatusCreated, "")
	}
	rows := listAll(t, b, path+"/rows", aliceToken, 100)
	require.Len(t, rows, len(servers), "only the rows written after the table was created again")
	for i, row := range rows {
		assert.Equal(t, float64(10+i), row["k"])
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
	return sendAs(aliceToken, base, method, path, body)
}

// sendAs is send as the user of token.
func sendAs(token, base, method, path string, body any) result {
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
	req.Header.Set("Authorization", "Bearer "+token)
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
	// Flushes and compactions of the table, sent to every server in turn
	// while the clients run, move the rows between the buffer and the
	// bucket under the clients' requests.
	done := make(chan struct{})
	storage := storageChurn(servers, "/v1/namespaces/lin/tables/reg", done)
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
	close(done)
	churn := <-storage
	require.NoError(t, errors.Join(errs...))
	require.NoError(t, churn.err)
	require.Positive(t, churn.rowsFlushed, "flushes moved rows while the clients ran")
	t.Logf("storage: %d flushes (%d rows), %d compactions, %d refused while another server held the table's lease",
		churn.flushes, churn.rowsFlushed, churn.compactions, churn.busy)
	unknown := 0
	for _, op := range ops {
		if op.Output.(rowOutput).unknown {
			unknown++
		}
	}
	res, info := porcupine.CheckOperationsVerbose(rowModel, ops, 30*time.Second)
	if res != porcupine.Ok {
		// Kept after the test, to be looked at.
		f, err := os.CreateTemp("", "kalamdb-history-*.html")
		require.NoError(t, err)
		file := f.Name()
		require.NoError(t, f.Close())
		_ = porcupine.VisualizePath(rowModel, info, file)
		t.Fatalf("porcupine: the history of %d requests is %s (see %s)", len(ops), res, file)
	}
	t.Logf("porcupine: %d requests of %d clients through %d servers, %d of unknown outcome, linearizable (%s)",
		len(ops), clients, len(servers), unknown, time.Since(start).Round(time.Millisecond))
	for i, in := range servers {
		assert.NotContains(t, in.logs.String(), "storage backend writes fail", "server %d", i)
	}
}

// churn counts what storageChurn did.
type churn struct {
	flushes, compactions, busy int
	rowsFlushed                int
	err                        error
}

// storageChurn flushes and compacts the table at path (/v1/namespaces/…/
// tables/…) through each server in turn until done is closed, then sends
// its counts. A request refused because another server holds the table's
// lease (409 TABLE_BUSY) is expected; any other failure ends it.
func storageChurn(servers []*instance, path string, done <-chan struct{}) <-chan churn {
	out := make(chan churn, 1)
	go func() {
		var c churn
		defer func() { out <- c }()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			op := "/flush"
			if i%3 == 2 {
				op = "/compact"
			}
			res := sendAs(adminToken, servers[i%len(servers)].base, "POST", path+op, nil)
			switch {
			case res.err == nil && res.status == http.StatusOK:
				if op == "/flush" {
					c.flushes++
					n, _ := res.body["rows_flushed"].(float64)
					c.rowsFlushed += int(n)
				} else {
					c.compactions++
				}
			case res.err == nil && res.status == http.StatusConflict && res.code == "TABLE_BUSY":
				c.busy++
			default:
				c.err = fmt.Errorf("POST %s%s: status %d %s %v %v", path, op, res.status, res.code, res.body, res.err)
				return
			}
		}
	}()
	return out
}

// checkPagesAgree: a user table and a shared table, written through every
// server and flushed in part through each, read the same through every
// server, page by page, as keys and as values.
func checkPagesAgree(t *testing.T, servers []*instance) {
	expect(t, servers[0].call("POST", "/v1/namespaces", adminToken, `{"name":"agree"}`), http.StatusCreated, "")
	for _, typ := range []string{"user", "shared"} {
		expect(t, servers[1].call("POST", "/v1/namespaces/agree/tables", adminToken,
			fmt.Sprintf(`{"name":%q,"type":%q,"columns":[{"name":"id","type":"int64"},{"name":"body","type":"string"}],"primary_key":"id"}`, typ, typ)),
			http.StatusCreated, "")
		path := "/v1/namespaces/agree/tables/" + typ
		for round := range 6 {
			in := servers[round%len(servers)]
			var rows []any
			for i := range 25 {
				rows = append(rows, map[string]any{"id": round*25 + i, "body": fmt.Sprintf("r%d-%d", round, i)})
			}
			expect(t, in.call("POST", path+"/rows", aliceToken, map[string]any{"rows": rows}), http.StatusCreated, "")
			expect(t, in.call("PATCH", path+"/rows/"+strconv.Itoa(round*25), aliceToken, `{"body":"updated"}`), http.StatusOK, "")
			expect(t, in.call("DELETE", path+"/rows/"+strconv.Itoa(round*25+1), aliceToken, nil), http.StatusNoContent, "")
			if round%2 == 0 {
				expect(t, servers[(round+1)%len(servers)].call("POST", path+"/flush", adminToken, nil), http.StatusOK, "")
			}
		}
		expect(t, servers[2].call("POST", path+"/compact", adminToken, nil), http.StatusOK, "")
		var first []map[string]any
		for i, in := range servers {
			got := listAll(t, in, path+"/rows", aliceToken, 7)
			require.Len(t, got, 6*24, "server %d, %s table", i, typ)
			if i == 0 {
				first = got
				continue
			}
			for j := range got {
				assert.Equal(t, first[j]["id"], got[j]["id"], "server %d, %s table, row %d", i, typ, j)
				assert.Equal(t, first[j]["body"], got[j]["body"], "server %d, %s table, row %d", i, typ, j)
				assert.Equal(t, first[j]["_seq"], got[j]["_seq"], "server %d, %s table, row %d", i, typ, j)
			}
		}
		assert.Equal(t, "updated", first[0]["body"])
	}
}

// checkStreamTail: events are appended through each server in turn while
// a reader tails the stream through each server in turn, after the last
// _seq it read: it reads every event once, in the order the appends were
// acknowledged, and every server lists the same events.
func checkStreamTail(t *testing.T, servers []*instance) {
	expect(t, servers[0].call("POST", "/v1/namespaces", adminToken, `{"name":"tail"}`), http.StatusCreated, "")
	expect(t, servers[0].call("POST", "/v1/namespaces/tail/tables", adminToken,
		`{"name":"ev","type":"stream","columns":[{"name":"n","type":"int64"}],"ttl_seconds":3600,"max_buffer_rows":100000}`),
		http.StatusCreated, "")
	path := "/v1/namespaces/tail/tables/ev/rows"
	const n = 60
	var got []int
	after := ""
	for i := range n {
		expect(t, servers[i%len(servers)].call("POST", path, aliceToken, map[string]any{"rows": []any{map[string]any{"n": i}}}), http.StatusCreated, "")
		q := "?limit=1000"
		if after != "" {
			q += "&after=" + after
		}
		r := expect(t, servers[(i+1)%len(servers)].call("GET", path+q, aliceToken, nil), http.StatusOK, "")
		for _, row := range rowsOf(r) {
			got = append(got, int(row["n"].(float64)))
			after = strconv.FormatInt(int64(row["_seq"].(float64)), 10)
		}
	}
	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	assert.Equal(t, want, got, "every event once, in the order the appends were acknowledged")
	for i, in := range servers {
		var all []int
		for _, row := range listAll(t, in, path, aliceToken, 7) {
			all = append(all, int(row["n"].(float64)))
		}
		assert.Equal(t, want, all, "server %d", i)
	}
}

// checkKillDuringFlush: the server that holds a table's flush lease is
// killed (SIGKILL) while it uploads the segment; no acknowledged row is
// lost or doubled, and another server completes the flush once the lease
// has expired.
func checkKillDuringFlush(t *testing.T, servers []*instance, proxy *s3test.Proxy) {
	const n = 120
	victim, heir := servers[0], servers[1]
	expect(t, victim.call("POST", "/v1/namespaces", adminToken, `{"name":"kill"}`), http.StatusCreated, "")
	expect(t, victim.call("POST", "/v1/namespaces/kill/tables", adminToken,
		`{"name":"t","type":"shared","columns":[{"name":"id","type":"int64"},{"name":"body","type":"string"}],"primary_key":"id"}`),
		http.StatusCreated, "")
	path := "/v1/namespaces/kill/tables/t"
	var rows []any
	for i := range n {
		rows = append(rows, map[string]any{"id": i, "body": fmt.Sprintf("row %d", i)})
	}
	for i := 0; i < n; i += 30 {
		// Through every server: each acknowledges its part.
		expect(t, servers[i/30%len(servers)].call("POST", path+"/rows", aliceToken, map[string]any{"rows": rows[i : i+30]}), http.StatusCreated, "")
	}
	// The segment's upload hangs, so the flush holds the table's lease.
	uploading := make(chan struct{})
	var once sync.Once
	proxy.SetRule(func(_ int, r *http.Request) s3test.Fault {
		if (r.Method == http.MethodPut || r.Method == http.MethodPost) && strings.Contains(r.URL.Path, "kill") {
			once.Do(func() { close(uploading) })
			return s3test.Hang
		}
		return s3test.Pass
	})
	flushed := make(chan result, 1)
	go func() { flushed <- sendAs(adminToken, victim.base, "POST", path+"/flush", nil) }()
	select {
	case <-uploading:
	case r := <-flushed:
		t.Fatalf("the flush ended before its upload: %d %s %v", r.status, r.code, r.err)
	case <-time.After(60 * time.Second):
		t.Fatal("the flush never uploaded its segment")
	}
	victim.crash()
	proxy.SetRule(func(int, *http.Request) s3test.Fault { return s3test.Pass })

	// The lease of the dead server refuses the flush until it expires,
	// leaseTTL after its last renewal at most.
	asked := time.Now()
	r := heir.call("POST", path+"/flush", adminToken, nil)
	require.Equal(t, http.StatusConflict, r.Status, "the dead server's lease holds: %v", r.Body)
	require.Equal(t, "TABLE_BUSY", r.ErrorCode())
	m := leaseUntilRE.FindStringSubmatch(r.ErrorMessage())
	require.NotNil(t, m, "the refusal names the lease's expiry: %v", r.Body)
	until, err := time.Parse(time.RFC3339Nano, m[1])
	require.NoError(t, err)
	assert.LessOrEqual(t, until.Sub(asked), leaseTTL, "the lease lasts storage.lease_ttl")
	var res reply
	eventuallyWithin(t, 3*leaseTTL, "another server flushes once the lease expired", func() error {
		res = heir.call("POST", path+"/flush", adminToken, nil)
		return status(res, http.StatusOK)
	})
	assert.Equal(t, float64(n), res.Body["rows_flushed"], "the flush completed on another server")
	again := expect(t, servers[2].call("POST", path+"/flush", adminToken, nil), http.StatusOK, "")
	assert.Zero(t, again.Body["rows_flushed"], "nothing was left buffered")
	for _, in := range servers[1:] {
		got := listAll(t, in, path+"/rows", aliceToken, 17)
		require.Len(t, got, n, "no acknowledged row lost or doubled")
		for i, row := range got {
			assert.Equal(t, float64(i), row["id"])
			assert.Equal(t, fmt.Sprintf("row %d", i), row["body"])
		}
	}
}

// leaseUntilRE finds the expiry in the message of a TABLE_BUSY refusal.
var leaseUntilRE = regexp.MustCompile(`is held by \S+ until (\S+)`)

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
