// Command report turns raw benchmark results into BENCHMARKS.md's tables
// and plots. It reads bench/results/micro.txt (go test -bench output) and
// the load reports bench/results/load*.json (coffer bench run) and
// bench/results/peers.json (coffer bench peers) and scale-*.json (coffer
// bench scale), writes SVG
// plots to bench/plots/, and replaces the text between the generated
// markers of BENCHMARKS.md, keeping everything else in it.
//
//	go run ./bench/report [-results bench/results] [-md BENCHMARKS.md]
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coffer-kms/coffer/bench"
)

const (
	beginMarker = "<!-- generated:begin (bench/report writes this part; edit outside it) -->"
	endMarker   = "<!-- generated:end -->"
)

func main() {
	results := flag.String("results", "bench/results", "directory of raw results")
	plots := flag.String("plots", "bench/plots", "directory for SVG plots")
	md := flag.String("md", "BENCHMARKS.md", "markdown file to update")
	flag.Parse()
	if err := os.MkdirAll(*plots, 0o755); err != nil {
		log.Fatal(err)
	}
	var out strings.Builder
	micro, header, err := readMicro(filepath.Join(*results, "micro.txt"))
	if err != nil {
		log.Printf("no micro-benchmarks: %v", err)
	} else {
		writeMicro(&out, micro, header, *plots)
	}
	loads, _ := filepath.Glob(filepath.Join(*results, "load*.json"))
	slices.Sort(loads)
	for _, f := range loads {
		var rep bench.Report
		raw, err := os.ReadFile(f)
		if err == nil {
			err = json.Unmarshal(raw, &rep)
		}
		if err != nil {
			log.Fatalf("%s: %v", f, err)
		}
		writeLoad(&out, &rep, filepath.Base(f), *plots)
	}
	if raw, err := os.ReadFile(filepath.Join(*results, "peers.json")); err == nil {
		var rep bench.PeersReport
		if err := json.Unmarshal(raw, &rep); err != nil {
			log.Fatalf("peers.json: %v", err)
		}
		writePeers(&out, &rep, *plots)
	}
	scales, _ := filepath.Glob(filepath.Join(*results, "scale-*.json"))
	var reps []*bench.ScaleReport
	for _, f := range scales {
		rep := new(bench.ScaleReport)
		raw, err := os.ReadFile(f)
		if err == nil {
			err = json.Unmarshal(raw, rep)
		}
		if err != nil {
			log.Fatalf("%s: %v", f, err)
		}
		reps = append(reps, rep)
	}
	// One table per store, its runs side by side.
	byStore := map[string][]*bench.ScaleReport{}
	for _, r := range reps {
		byStore[r.Store] = append(byStore[r.Store], r)
	}
	for _, store := range []string{"bolt", "postgres"} {
		if len(byStore[store]) > 0 {
			writeScale(&out, store, byStore[store])
		}
	}
	if err := splice(*md, out.String()); err != nil {
		log.Fatal(err)
	}
}

// result is one benchmark line.
type result struct {
	pkg, name              string
	nsOp, mbS, bOp, allocs float64
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

func readMicro(path string) ([]result, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var rs []result
	var header []string
	pkg := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "pkg: "):
			pkg = strings.TrimPrefix(line, "pkg: ")
		case strings.HasPrefix(line, "cpu: ") || strings.HasPrefix(line, "goos: ") || strings.HasPrefix(line, "goarch: "):
			if !slices.Contains(header, line) {
				header = append(header, line)
			}
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		r := result{pkg: strings.TrimPrefix(pkg, "github.com/coffer-kms/coffer/"), name: m[1]}
		f := strings.Fields(m[2])
		for i := 0; i+1 < len(f); i += 2 {
			v, _ := strconv.ParseFloat(f[i], 64)
			switch f[i+1] {
			case "ns/op":
				r.nsOp = v
			case "MB/s":
				r.mbS = v
			case "B/op":
				r.bOp = v
			case "allocs/op":
				r.allocs = v
			}
		}
		rs = append(rs, r)
	}
	return rs, header, sc.Err()
}

func writeMicro(w *strings.Builder, rs []result, header []string, plots string) {
	fmt.Fprintf(w, "### Micro-benchmarks\n\n`make bench` → `go test -run '^$' -bench . -benchmem ./...` → `bench/results/micro.txt`  \n%s\n\n", strings.Join(header, " · "))
	fmt.Fprintln(w, "| package | benchmark | ns/op | MB/s | B/op | allocs/op |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|")
	for _, r := range rs {
		mb := ""
		if r.mbS > 0 {
			mb = fmt.Sprintf("%.0f", r.mbS)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %.0f | %.0f |\n", r.pkg, r.name, fmtNs(r.nsOp), mb, r.bOp, r.allocs)
	}
	fmt.Fprintln(w)

	// Throughput against message size, one line per AEAD implementation:
	// every benchmark named …Seal…/impl=X/size=N (or engine's Seal/size=N).
	bySeries := map[string]*series{}
	var order []string
	sizeRE := regexp.MustCompile(`size=(\d+)`)
	implRE := regexp.MustCompile(`impl=([^/]+)`)
	for _, r := range rs {
		if !strings.Contains(r.name, "Seal") || r.mbS == 0 {
			continue
		}
		sm := sizeRE.FindStringSubmatch(r.name)
		if sm == nil {
			continue
		}
		impl := r.pkg
		if im := implRE.FindStringSubmatch(r.name); im != nil {
			impl = im[1]
		} else if r.pkg == "engine" {
			impl = "engine (HKDF + GCM)"
		}
		s := bySeries[impl]
		if s == nil {
			s = &series{name: impl}
			bySeries[impl] = s
			order = append(order, impl)
		}
		size, _ := strconv.ParseFloat(sm[1], 64)
		s.x = append(s.x, size)
		s.y = append(s.y, r.mbS/1000)
	}
	var ss []series
	for _, k := range order {
		ss = append(ss, *bySeries[k])
	}
	if svg := lineChart("AES-GCM Seal throughput by message size", "message size (bytes)", "GB/s", ss, sizeLabel); svg != "" {
		writePlot(w, plots, "aead-seal-throughput.svg", svg, "Seal throughput against message size, per AEAD implementation")
	}
}

func writeLoad(w *strings.Builder, rep *bench.Report, file, plots string) {
	m := rep.Machine
	fmt.Fprintf(w, "### Load: `%s`\n\n`%s` → `bench/results/%s`  \n%s, %d CPUs, %s, kernel %s, commit %s, %s; %s; %d run(s) of %s per configuration, medians.\n\n",
		file, rep.Command, file, m.CPU, m.CPUs, m.Go, m.Kernel, m.Commit, m.Date, m.Pinned, rep.Runs, rep.Duration)
	fmt.Fprintln(w, "| operation | concurrency | Coffer req/s | bare req/s | p50 µs | p99 µs | p999 µs | errors | Coffer CPU µs/req | bare CPU µs/req | CPU ratio |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	var cats []string
	var rpsC, rpsB, p50, p99 series
	rpsC.name, rpsB.name, p50.name, p99.name = "Coffer", "bare fasthttp", "p50", "p99"
	for _, s := range rep.Results {
		fmt.Fprintf(w, "| %s | %d | %.0f | %.0f | %.0f | %.0f | %.0f | %d | %.1f | %.1f | **%.2f×** |\n",
			s.Op, s.Concurrency, s.Coffer.RPS, s.Bare.RPS, s.Coffer.P50us, s.Coffer.P99us, s.Coffer.P999us, s.Coffer.Errors,
			s.Coffer.ServerCPUus, s.Bare.ServerCPUus, s.CPURatio)
		cats = append(cats, fmt.Sprintf("%s c=%d", s.Op, s.Concurrency))
		rpsC.y, rpsB.y = append(rpsC.y, s.Coffer.RPS), append(rpsB.y, s.Bare.RPS)
		p50.y, p99.y = append(p50.y, s.Coffer.P50us), append(p99.y, s.Coffer.P99us)
	}
	fmt.Fprintln(w)
	for i, s := range rep.Results {
		if s.Compare == nil {
			continue
		}
		if i == 0 || rep.Results[i-1].Compare == nil {
			fmt.Fprintf(w, "Same run, against a second Coffer started with `%s`:\n\n", strings.Join(s.CompareArgs, " "))
			fmt.Fprintln(w, "| operation | concurrency | Coffer req/s | compared req/s | Coffer ÷ compared | Coffer p99 µs | compared p99 µs | Coffer CPU µs/req | compared CPU µs/req |")
			fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
		}
		fmt.Fprintf(w, "| %s | %d | %.0f | %.0f | **%.0f%%** | %.0f | %.0f | %.1f | %.1f |\n", s.Op, s.Concurrency, s.Coffer.RPS, s.Compare.RPS,
			100*s.CompareRPSRatio, s.Coffer.P99us, s.Compare.P99us, s.Coffer.ServerCPUus, s.Compare.ServerCPUus)
	}
	fmt.Fprintln(w)
	base := strings.TrimSuffix(file, ".json")
	for _, s := range rep.Results {
		rss := s.Coffer.RSSSamples
		if len(rss) < 4 {
			continue
		}
		// Steady state: the samples after the first quarter of the run.
		steady := rss[len(rss)/4:]
		lo, hi := slices.Min(steady), slices.Max(steady)
		fmt.Fprintf(w, "RSS of Coffer during %s at concurrency %d, sampled every %s over %s: start %d KiB, after the first quarter min %d KiB, max %d KiB, last %d KiB (growth over the steady part: %+.1f%%).\n\n",
			s.Op, s.Concurrency, s.Coffer.RSSEvery, rep.Duration, rss[0], lo, hi, rss[len(rss)-1], 100*float64(rss[len(rss)-1]-steady[0])/float64(steady[0]))
		var x, y []float64
		every, _ := time.ParseDuration(s.Coffer.RSSEvery)
		for i, v := range rss {
			x = append(x, float64(i+1)*every.Seconds())
			y = append(y, float64(v)/1024)
		}
		if svg := linearChart(fmt.Sprintf("Coffer RSS, %s at concurrency %d", s.Op, s.Concurrency), "seconds", "MiB", []series{{name: "RSS", x: x, y: y}}); svg != "" {
			writePlot(w, plots, fmt.Sprintf("%s-rss-%s-%d.svg", base, s.Op, s.Concurrency), svg, "server RSS over the run")
		}
	}
	if svg := barChart("Requests per second (server on one CPU)", "req/s", cats, []series{rpsC, rpsB}); svg != "" {
		writePlot(w, plots, base+"-rps.svg", svg, "req/s per operation, Coffer against the bare fasthttp server")
	}
	if svg := barChart("Coffer latency", "µs", cats, []series{p50, p99}); svg != "" {
		writePlot(w, plots, base+"-latency.svg", svg, "p50 and p99 latency per operation")
	}
}

func writePlot(w *strings.Builder, dir, name, svg, alt string) {
	if err := os.WriteFile(filepath.Join(dir, name), []byte(svg), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(w, "![%s](%s)\n\n", alt, filepath.ToSlash(filepath.Join(dir, name)))
}

func fmtNs(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e4:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	default:
		return fmt.Sprintf("%.1f", ns)
	}
}

func sizeLabel(x float64) string {
	switch {
	case x >= 1<<20:
		return fmt.Sprintf("%.0fMiB", x/(1<<20))
	case x >= 1<<10:
		return fmt.Sprintf("%.0fKiB", x/(1<<10))
	}
	return fmt.Sprintf("%.0fB", x)
}

// splice replaces the generated part of the markdown file.
func splice(path, generated string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(raw)
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	if i < 0 || j < i {
		return fmt.Errorf("%s lacks the generated markers", path)
	}
	s = s[:i+len(beginMarker)] + "\n\n" + generated + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}

// writePeers is the peers run (issue 26): every target at every point, with
// Coffer's ratios to the bare server and to local-kms.
func writePeers(w *strings.Builder, rep *bench.PeersReport, plots string) {
	m := rep.Machine
	fmt.Fprintf(w, "### Peers: `peers.json`\n\n`%s` → `bench/results/peers.json`  \n%s, %d CPUs, %s, kernel %s, commit %s, %s; %s; one run of %s per point; peer %s.\n\n",
		rep.Command, m.CPU, m.CPUs, m.Go, m.Kernel, m.Commit, m.Date, m.Pinned, rep.Duration, rep.LocalKMS)
	for _, sk := range rep.Skipped {
		fmt.Fprintf(w, "Not measured: %s.  \n", sk)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| operation | concurrency | server | req/s | p50 µs | p99 µs | errors | CPU µs/req | CPU ÷ bare | req/s ÷ local-kms |")
	fmt.Fprintln(w, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
	var cats []string
	rps := make([]series, len(rep.Targets))
	cpu := make([]series, len(rep.Targets))
	for i, t := range rep.Targets {
		rps[i].name, cpu[i].name = t, t
	}
	for _, p := range rep.Points {
		// Short labels: six groups share the plot's width.
		cats = append(cats, fmt.Sprintf("%s c=%d", strings.Replace(p.Op, "GenerateDataKey", "GDK", 1), p.Concurrency))
		for i, r := range p.Results {
			ratioBare, ratioPeer := "", ""
			if v, ok := p.CPUvsBare[r.Target]; ok {
				ratioBare = fmt.Sprintf("**%.2f×**", v)
			}
			if v, ok := p.RPSvsLocalKMS[r.Target]; ok {
				ratioPeer = fmt.Sprintf("**%.1f×**", v)
			}
			fmt.Fprintf(w, "| %s | %d | %s | %.0f | %.0f | %.0f | %d | %.1f | %s | %s |\n",
				p.Op, p.Concurrency, r.Target, r.RPS, r.P50us, r.P99us, r.Errors, r.ServerCPUus, ratioBare, ratioPeer)
			if i < len(rps) {
				rps[i].y = append(rps[i].y, r.RPS)
				cpu[i].y = append(cpu[i].y, r.ServerCPUus)
			}
		}
	}
	fmt.Fprintln(w)
	if svg := barChart("Requests per second, each server on one CPU", "req/s", cats, rps); svg != "" {
		writePlot(w, plots, "peers-rps.svg", svg, "req/s per operation: Coffer in each audit mode, the bare fasthttp server and local-kms")
	}
	if svg := barChart("Server CPU per request", "µs", cats, cpu); svg != "" {
		writePlot(w, plots, "peers-cpu.svg", svg, "server CPU time per request: Coffer in each audit mode, the bare fasthttp server and local-kms")
	}
}

// writeScale is the scale runs (issue 26.2) side by side, smallest first,
// with each figure's growth from the smallest to the largest.
func writeScale(w *strings.Builder, store string, reps []*bench.ScaleReport) {
	slices.SortFunc(reps, func(a, b *bench.ScaleReport) int { return a.Keys - b.Keys })
	file := "scale-%d.json"
	if store != "bolt" {
		file = "scale-" + store + "-%d.json"
	}
	fmt.Fprintf(w, "### Scale (%s): `%s`\n\n", store, strings.Replace(file, "%d", "*", 1))
	for _, r := range reps {
		m := r.Machine
		fmt.Fprintf(w, "- %d keys: `%s` → `bench/results/%s`; %s, %d CPUs, %s, commit %s, %s; %s\n",
			r.Keys, r.Command, fmt.Sprintf(file, r.Keys), m.CPU, m.CPUs, m.Go, m.Commit, m.Date, m.Pinned)
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, "| figure |")
	for _, r := range reps {
		fmt.Fprintf(w, " %s keys |", keysLabel(r.Keys))
	}
	fmt.Fprintln(w, " growth |")
	fmt.Fprint(w, "|---|")
	for range reps {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprintln(w, "---:|")
	row := func(name, format string, get func(*bench.ScaleReport) (float64, bool)) {
		var vals []float64
		var cells []string
		for _, r := range reps {
			v, ok := get(r)
			if !ok {
				cells = append(cells, "—")
				continue
			}
			vals = append(vals, v)
			cells = append(cells, fmt.Sprintf(format, v))
		}
		// Growth from the smallest run to the largest, when both have
		// the figure (a bulk run has no API creation figures).
		growth := ""
		if _, ok := get(reps[len(reps)-1]); ok && len(vals) > 1 && vals[0] != 0 {
			growth = fmt.Sprintf("%.2f×", vals[len(vals)-1]/vals[0])
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", name, strings.Join(cells, " | "), growth)
	}
	always := func(f func(*bench.ScaleReport) float64) func(*bench.ScaleReport) (float64, bool) {
		return func(r *bench.ScaleReport) (float64, bool) { return f(r), true }
	}
	// A bulk run (--bulk) made its keys in process: no API creation rate,
	// no audit of the creations, no server to measure after them, no
	// aliases.
	api := func(f func(*bench.ScaleReport) float64) func(*bench.ScaleReport) (float64, bool) {
		return func(r *bench.ScaleReport) (float64, bool) { return f(r), !r.Bulk }
	}
	aliased := func(f func(*bench.ScaleReport) float64) func(*bench.ScaleReport) (float64, bool) {
		return func(r *bench.ScaleReport) (float64, bool) { return f(r), r.Aliases > 0 }
	}
	row("CreateKey + CreateAlias, keys/s (c=64, audit on)", "%.0f", api(func(r *bench.ScaleReport) float64 { return r.CreatePerSec }))
	row("bulk creation in process, keys/s (not comparable with the API)", "%.0f", func(r *bench.ScaleReport) (float64, bool) { return r.CreatePerSec, r.Bulk })
	row("store: coffer.db bytes per key (bbolt)", "%.0f", func(r *bench.ScaleReport) (float64, bool) { return r.StoreBytesPerKey, r.StoreBytes >= 0 })
	row("audit trail bytes per key", "%.0f", api(func(r *bench.ScaleReport) float64 { return float64(r.AuditBytes) / float64(r.Keys) }))
	row("RSS after creating, MiB", "%.1f", api(func(r *bench.ScaleReport) float64 { return float64(r.RSSAfterCreateKiB) / 1024 }))
	row("RSS after restart, MiB (anonymous part)", "%.1f", always(func(r *bench.ScaleReport) float64 { return float64(r.RSSAnonAfterStartKiB) / 1024 }))
	row("RSS after the cold loads, MiB", "%.1f", always(func(r *bench.ScaleReport) float64 { return float64(r.RSSAfterLoadKiB) / 1024 }))
	row("RSS after the cold loads, MiB (anonymous part)", "%.1f", always(func(r *bench.ScaleReport) float64 { return float64(r.RSSAnonAfterLoadKiB) / 1024 }))
	row("restart until the first answer, s", "%.2f", always(func(r *bench.ScaleReport) float64 { return r.StartSeconds }))
	row("ListKeys, every page (1000 a page), s", "%.2f", always(func(r *bench.ScaleReport) float64 { return r.ListKeysSeconds }))
	row("ListKeys, ms per page", "%.2f", always(func(r *bench.ScaleReport) float64 { return 1000 * r.ListKeysSeconds / float64(r.ListKeysPages) }))
	row("ListAliases, every page (100 a page), s", "%.2f", aliased(func(r *bench.ScaleReport) float64 { return r.ListAliasesSeconds }))
	row("ListAliases, ms per page", "%.2f", aliased(func(r *bench.ScaleReport) float64 {
		return 1000 * r.ListAliasesSeconds / float64(max(r.ListAliasesPages, 1))
	}))
	for _, op := range []string{"DescribeKey", "Encrypt"} {
		for _, spread := range []string{"hot", "cold"} {
			pick := func(r *bench.ScaleReport) *bench.LoadResult {
				for _, p := range r.Latency {
					if p.Op == op && p.Spread == spread {
						return p.Result
					}
				}
				return nil
			}
			get := func(f func(*bench.LoadResult) float64) func(*bench.ScaleReport) (float64, bool) {
				return func(r *bench.ScaleReport) (float64, bool) {
					if lr := pick(r); lr != nil {
						return f(lr), true
					}
					return 0, false
				}
			}
			row(fmt.Sprintf("%s %s, req/s (c=32)", op, spread), "%.0f", get(func(l *bench.LoadResult) float64 { return l.RPS }))
			row(fmt.Sprintf("%s %s, p50 µs", op, spread), "%.0f", get(func(l *bench.LoadResult) float64 { return l.P50us }))
			row(fmt.Sprintf("%s %s, p99 µs", op, spread), "%.0f", get(func(l *bench.LoadResult) float64 { return l.P99us }))
			row(fmt.Sprintf("%s %s, server CPU µs/request", op, spread), "%.1f", get(func(l *bench.LoadResult) float64 { return l.ServerCPUus }))
		}
	}
	sweep := func(f func(*bench.SweepReport) float64) func(*bench.ScaleReport) (float64, bool) {
		return func(r *bench.ScaleReport) (float64, bool) {
			if r.Sweeps == nil {
				return 0, false
			}
			return f(r.Sweeps), true
		}
	}
	row("maintenance run, nothing due, ms", "%.1f", sweep(func(s *bench.SweepReport) float64 { return 1000 * s.IdleSeconds }))
	row("keys rotated by one maintenance run", "%.0f", sweep(func(s *bench.SweepReport) float64 { return float64(s.Rotated) }))
	row("rotation sweep, ms per key", "%.2f", sweep(func(s *bench.SweepReport) float64 { return 1000 * s.RotateSeconds / float64(max(s.Rotated, 1)) }))
	row("keys deleted by one maintenance run", "%.0f", sweep(func(s *bench.SweepReport) float64 { return float64(s.Deleted) }))
	row("deletion sweep, ms per key", "%.2f", sweep(func(s *bench.SweepReport) float64 { return 1000 * s.DeleteSeconds / float64(max(s.Deleted, 1)) }))
	fmt.Fprintln(w)
}

func keysLabel(n int) string {
	switch {
	case n >= 1000000 && n%1000000 == 0:
		return fmt.Sprintf("%dM", n/1000000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.Itoa(n)
}
