// Command benchratio reads `go test -bench` output and prints, for every
// benchmark that has a "direct" and a "backend" variant (such as
// BenchmarkDispatch/get/direct and BenchmarkDispatch/get/backend), the
// median ns/op and allocs/op of each side and the backend/direct ratio.
//
//	go test -run '^$' -bench Dispatch -benchmem -count 6 ./kalamdb-store/rocksdb/ > bench.txt
//	go run ./tools/benchratio -target 1.02 < bench.txt
//
// The ratio is median(backend ns/op) / median(direct ns/op). The spread
// column gives the lowest and highest ratio of the runs paired in order (the
// i-th backend run over the i-th direct run), which shows how noisy the
// machine was. When the benchmarks report a cpu-ns/op metric (CPU time of
// the process per op), the cpu ratio column gives the ratio of its medians,
// which a busy machine disturbs less than wall time. With -markdown the table is printed as Markdown, ready for
// docs/benchmarks.md. With -fail, benchratio exits with status 1 when a
// ratio is above the target or the backend allocates more per op.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

func main() {
	target := flag.Float64("target", 1.02, "the highest acceptable backend/direct ratio")
	markdown := flag.Bool("markdown", false, "print a Markdown table")
	fail := flag.Bool("fail", false, "exit with status 1 when a ratio misses the target or the backend allocates more")
	flag.Parse()
	res, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchratio:", err)
		os.Exit(2)
	}
	rows := compare(res, *target)
	if len(rows) == 0 {
		fmt.Fprintln(os.Stderr, "benchratio: no direct/backend benchmark pairs in the input")
		os.Exit(2)
	}
	if *markdown {
		writeMarkdown(os.Stdout, rows, *target)
	} else {
		writeText(os.Stdout, rows, *target)
	}
	if *fail {
		for _, r := range rows {
			if !r.OK {
				os.Exit(1)
			}
		}
	}
}

// run is one result line of a benchmark.
type run struct {
	NsPerOp     float64
	CPUNsPerOp  float64 // the cpu-ns/op metric, -1 when the line has none
	AllocsPerOp float64 // -1 when the line has no allocs/op
}

// results maps a benchmark, named "<package>.<name>" without the
// -GOMAXPROCS suffix (package being the last element of the "pkg:" line
// above it, when there is one), to its runs in input order. Several packages
// may each have a BenchmarkDispatch.
type results map[string][]run

var pkgRE = regexp.MustCompile(`^pkg:\s+(\S+)`)
var lineRE = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+([0-9.]+) ns/op(.*)$`)
var allocsRE = regexp.MustCompile(`\s([0-9.]+) allocs/op`)
var cpuRE = regexp.MustCompile(`\s([0-9.]+) cpu-ns/op`)

// parse reads benchmark output; lines that are not results are skipped.
func parse(r io.Reader) (results, error) {
	res := results{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	pkg := ""
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if m := pkgRE.FindStringSubmatch(line); m != nil {
			pkg = path.Base(m[1]) + "."
			continue
		}
		m := lineRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		ns, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: ns/op %q: %w", m[1], m[2], err)
		}
		allocs := -1.0
		if a := allocsRE.FindStringSubmatch(m[3]); a != nil {
			if allocs, err = strconv.ParseFloat(a[1], 64); err != nil {
				return nil, fmt.Errorf("%s: allocs/op %q: %w", m[1], a[1], err)
			}
		}
		cpu := -1.0
		if c := cpuRE.FindStringSubmatch(m[3]); c != nil {
			if cpu, err = strconv.ParseFloat(c[1], 64); err != nil {
				return nil, fmt.Errorf("%s: cpu-ns/op %q: %w", m[1], c[1], err)
			}
		}
		res[pkg+m[1]] = append(res[pkg+m[1]], run{NsPerOp: ns, CPUNsPerOp: cpu, AllocsPerOp: allocs})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(res) == 0 {
		return nil, errors.New("no benchmark results in the input")
	}
	return res, nil
}

// row is the comparison of one operation.
type row struct {
	Op                          string // the benchmark name without /direct or /backend
	Runs                        int    // paired runs
	DirectNs, BackendNs         float64
	Ratio                       float64
	MinRatio, MaxRatio          float64
	CPURatio                    float64 // ratio of the cpu-ns/op medians, 0 when not reported
	DirectAllocs, BackendAllocs float64
	OK                          bool
}

func compare(res results, target float64) []row {
	var rows []row
	for name, direct := range res {
		op, ok := strings.CutSuffix(name, "/direct")
		if !ok {
			continue
		}
		backend, ok := res[op+"/backend"]
		if !ok {
			continue
		}
		r := row{Op: op, Runs: min(len(direct), len(backend))}
		r.DirectNs, r.BackendNs = median(direct, ns), median(backend, ns)
		r.DirectAllocs, r.BackendAllocs = median(direct, allocs), median(backend, allocs)
		r.Ratio = r.BackendNs / r.DirectNs
		if dc, bc := median(direct, cpuNs), median(backend, cpuNs); dc > 0 && bc > 0 {
			r.CPURatio = bc / dc
		}
		r.MinRatio, r.MaxRatio = r.Ratio, r.Ratio
		for i := 0; i < r.Runs; i++ {
			q := backend[i].NsPerOp / direct[i].NsPerOp
			r.MinRatio, r.MaxRatio = min(r.MinRatio, q), max(r.MaxRatio, q)
		}
		r.OK = r.Ratio <= target && r.BackendAllocs <= r.DirectAllocs
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Op < rows[j].Op })
	return rows
}

func ns(r run) float64     { return r.NsPerOp }
func cpuNs(r run) float64  { return r.CPUNsPerOp }
func allocs(r run) float64 { return r.AllocsPerOp }

func median(runs []run, f func(run) float64) float64 {
	v := make([]float64, len(runs))
	for i, r := range runs {
		v[i] = f(r)
	}
	sort.Float64s(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func verdict(r row, target float64) string {
	switch {
	case r.BackendAllocs > r.DirectAllocs:
		return "MORE ALLOCS"
	case r.Ratio <= target:
		return "ok"
	}
	return fmt.Sprintf("ABOVE %.2f", target)
}

func fmtAllocs(a float64) string {
	if a < 0 {
		return "?"
	}
	return strconv.FormatFloat(a, 'f', -1, 64)
}

func fmtCPU(r row) string {
	if r.CPURatio == 0 {
		return "-"
	}
	return strconv.FormatFloat(r.CPURatio, 'f', 3, 64)
}

func writeText(w io.Writer, rows []row, target float64) {
	fmt.Fprintf(w, "%-36s %5s %14s %14s %7s %15s %9s %14s %14s  %s\n",
		"operation", "runs", "direct ns/op", "backend ns/op", "ratio", "spread", "cpu ratio", "direct allocs", "backend allocs", "verdict")
	for _, r := range rows {
		fmt.Fprintf(w, "%-36s %5d %14.0f %14.0f %7.3f %7.3f–%-7.3f %9s %14s %14s  %s\n",
			r.Op, r.Runs, r.DirectNs, r.BackendNs, r.Ratio, r.MinRatio, r.MaxRatio, fmtCPU(r),
			fmtAllocs(r.DirectAllocs), fmtAllocs(r.BackendAllocs), verdict(r, target))
	}
}

func writeMarkdown(w io.Writer, rows []row, target float64) {
	fmt.Fprintln(w, "| operation | runs | direct ns/op | backend ns/op | ratio | spread | cpu ratio | direct allocs/op | backend allocs/op | verdict |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---|---:|---:|---:|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %d | %.0f | %.0f | %.3f | %.3f–%.3f | %s | %s | %s | %s |\n",
			r.Op, r.Runs, r.DirectNs, r.BackendNs, r.Ratio, r.MinRatio, r.MaxRatio, fmtCPU(r),
			fmtAllocs(r.DirectAllocs), fmtAllocs(r.BackendAllocs), verdict(r, target))
	}
}
