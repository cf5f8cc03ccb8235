// Package difftest holds the differential fuzz test of the storage
// backends: FuzzDifferential decodes its input into a sequence of
// operations (puts, deletes, batches, scans with random prefix, start,
// limit and direction, iterators held open across writes and drops,
// partition create, drop and list, reopen) and applies it to the memory
// backend, the model, and to each backend of its list, failing on the first
// answer that differs.
//
// The seed corpus runs in every plain `go test`; `make fuzz` explores:
//
//	go test -run '^$' -fuzz '^FuzzDifferential$' -fuzztime 60s ./difftest/
//
// A backend joins with one entry in the backends list of difftest_test.go.
package difftest
