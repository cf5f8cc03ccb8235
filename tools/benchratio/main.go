// Command benchratio reads `go test -bench` output and prints, for every
// benchmark that has a "direct" and a "backend" variant (such as
// BenchmarkDispatch/get/direct and BenchmarkDispatch/get/backend), the
// median ns/op and allocs/op of each side and the backend/direct ratio.
//
//	go test -run '^$' -bench Dispatch -benchmem -count 6 ./kalamdb-store/rocksdb/ > bench.txt
//	go run ./tools/benchratio -target 1.02 < bench.txt
//
// Columns:
//
//   - ratio: median(backend ns/op) / median(direct ns/op), the two sides
//     having run one after the other, each for -benchtime;
//   - spread: the lowest and highest ratio of the runs paired in order
//     (the i-th backend run over the i-th direct run), which shows how
//     noisy the machine was;
//   - cpu: the same ratio of the medians of a cpu-ns/op metric (CPU time
//     of the process per op), when the benchmarks report one;
//   - paired, paired cpu, engine: the medians over the runs of the
//     "backend/direct", "cpu-backend/direct" and "engine/direct" metrics of
//     an <op>/paired variant, which alternates the sides in short blocks
//     (see BenchmarkDispatch in kalamdb-store/rocksdb), when there is one.
//
// The verdict compares the paired ratio with -target when there is one (it
// is the figure a busy machine disturbs least), the ratio otherwise, and
// flags a backend that allocates more per op than direct. With -markdown the
// table is printed as Markdown; with -fail, benchratio exits with status 1
// when a verdict is not ok.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
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
	fail := flag.Bool("fail", false, "exit with status 1 when a verdict is not ok")
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
		writeMarkdown(os.Stdout, rows)
	} else {
		writeText(os.Stdout, rows)
	}
	if *fail {
		for _, r := range rows {
			if !r.OK {
				os.Exit(1)
			}
		}
	}
}

// run is one result line of a benchmark: its metrics by unit ("ns/op",
// "allocs/op", "cpu-ns/op", "backend/direct", …).
type run map[string]float64

// results maps a benchmark, named "<package>.<name>" without the
// -GOMAXPROCS suffix (package being the last element of the "pkg:" line
// above it, when there is one), to its runs in input order. Several packages
// may each have a BenchmarkDispatch.
type results map[string][]run

var (
	pkgRE    = regexp.MustCompile(`^pkg:\s+(\S+)`)
	lineRE   = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)
	metricRE = regexp.MustCompile(`([0-9.eE+-]+)\s+(\S+)`)
)

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
		metrics := run{}
		for _, mm := range metricRE.FindAllStringSubmatch(m[2], -1) {
			v, err := strconv.ParseFloat(mm[1], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: %s %q: %w", m[1], mm[2], mm[1], err)
			}
			metrics[mm[2]] = v
		}
		if _, ok := metrics["ns/op"]; !ok {
			continue
		}
		res[pkg+m[1]] = append(res[pkg+m[1]], metrics)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(res) == 0 {
		return nil, errors.New("no benchmark results in the input")
	}
	return res, nil
}

// row is the comparison of one operation. Ratios that were not measured
// are NaN; allocs that were not reported are -1.
type row struct {
	Op                          string // the benchmark name without /direct or /backend
	Runs                        int    // paired runs
	DirectNs, BackendNs         float64
	Ratio                       float64
	MinRatio, MaxRatio          float64
	CPURatio                    float64 // ratio of the cpu-ns/op medians
	Paired, PairedCPU, Engine   float64 // medians of the /paired variant's metrics
	DirectAllocs, BackendAllocs float64
	Target                      float64
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
		r := row{Op: op, Runs: min(len(direct), len(backend)), Target: target}
		r.DirectNs, r.BackendNs = median(direct, "ns/op"), median(backend, "ns/op")
		r.DirectAllocs, r.BackendAllocs = median(direct, "allocs/op"), median(backend, "allocs/op")
		if math.IsNaN(r.DirectAllocs) || math.IsNaN(r.BackendAllocs) {
			r.DirectAllocs, r.BackendAllocs = -1, -1
		}
		r.Ratio = r.BackendNs / r.DirectNs
		r.MinRatio, r.MaxRatio = r.Ratio, r.Ratio
		for i := 0; i < r.Runs; i++ {
			q := backend[i]["ns/op"] / direct[i]["ns/op"]
			r.MinRatio, r.MaxRatio = min(r.MinRatio, q), max(r.MaxRatio, q)
		}
		r.CPURatio = median(backend, "cpu-ns/op") / median(direct, "cpu-ns/op")
		paired := res[op+"/paired"]
		r.Paired = median(paired, "backend/direct")
		r.PairedCPU = median(paired, "cpu-backend/direct")
		r.Engine = median(paired, "engine/direct")
		r.OK = r.verdict() == "ok"
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Op < rows[j].Op })
	return rows
}

// median returns the median of the runs' metric, or NaN when no run has it.
func median(runs []run, metric string) float64 {
	var v []float64
	for _, r := range runs {
		if x, ok := r[metric]; ok {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return math.NaN()
	}
	sort.Float64s(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// judged is the ratio the verdict rests on: the paired one when measured.
func (r row) judged() float64 {
	if !math.IsNaN(r.Paired) {
		return r.Paired
	}
	return r.Ratio
}

func (r row) verdict() string {
	switch {
	case r.BackendAllocs > r.DirectAllocs:
		return "MORE ALLOCS"
	case r.judged() <= r.Target:
		return "ok"
	}
	return fmt.Sprintf("ABOVE %.2f", r.Target)
}

func fmtRatio(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "-"
	}
	return strconv.FormatFloat(x, 'f', 3, 64)
}

func fmtAllocs(a float64) string {
	if a < 0 {
		return "?"
	}
	return strconv.FormatFloat(a, 'f', -1, 64)
}

var header = []string{"operation", "runs", "direct ns/op", "backend ns/op", "ratio", "spread", "cpu",
	"paired", "paired cpu", "engine", "direct allocs", "backend allocs", "verdict"}

func (r row) cells() []string {
	return []string{
		r.Op, strconv.Itoa(r.Runs),
		strconv.FormatFloat(r.DirectNs, 'f', 0, 64), strconv.FormatFloat(r.BackendNs, 'f', 0, 64),
		fmtRatio(r.Ratio), fmtRatio(r.MinRatio) + "–" + fmtRatio(r.MaxRatio), fmtRatio(r.CPURatio),
		fmtRatio(r.Paired), fmtRatio(r.PairedCPU), fmtRatio(r.Engine),
		fmtAllocs(r.DirectAllocs), fmtAllocs(r.BackendAllocs), r.verdict(),
	}
}

func writeText(w io.Writer, rows []row) {
	table := [][]string{header}
	for _, r := range rows {
		table = append(table, r.cells())
	}
	widths := make([]int, len(header))
	for _, line := range table {
		for i, c := range line {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for _, line := range table {
		for i, c := range line {
			pad := strings.Repeat(" ", widths[i]-len([]rune(c)))
			if i == 0 {
				fmt.Fprint(w, c, pad)
			} else {
				fmt.Fprint(w, "  ", pad, c)
			}
		}
		fmt.Fprintln(w)
	}
}

func writeMarkdown(w io.Writer, rows []row) {
	fmt.Fprintln(w, "| "+strings.Join(header, " | ")+" |")
	fmt.Fprintln(w, "|---|"+strings.Repeat("---:|", len(header)-2)+"---|")
	for _, r := range rows {
		fmt.Fprintln(w, "| "+strings.Join(r.cells(), " | ")+" |")
	}
}
