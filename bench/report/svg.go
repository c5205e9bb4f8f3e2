package main

import (
	"fmt"
	"math"
	"strings"
)

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

// series is one line of a chart: y values at x positions.
type series struct {
	name string
	x, y []float64
}

const (
	width, height          = 720, 400
	left, right, top, bott = 70, 180, 40, 50
)

// lineChart draws series with a log2 x axis (message sizes) and a linear y.
func lineChart(title, xLabel, yLabel string, ss []series, xTick func(float64) string) string {
	var b strings.Builder
	minX, maxX, maxY := math.Inf(1), math.Inf(-1), 0.0
	for _, s := range ss {
		for i := range s.x {
			minX, maxX, maxY = math.Min(minX, s.x[i]), math.Max(maxX, s.x[i]), math.Max(maxY, s.y[i])
		}
	}
	if len(ss) == 0 || maxY == 0 {
		return ""
	}
	maxY = niceCeil(maxY)
	lx0, lx1 := math.Log2(minX), math.Log2(maxX)
	if lx1 == lx0 {
		lx1 = lx0 + 1
	}
	px := func(x float64) float64 { return left + (math.Log2(x)-lx0)/(lx1-lx0)*(width-left-right) }
	py := func(y float64) float64 { return height - bott - y/maxY*(height-top-bott) }
	header(&b, title)
	for i := 0; i <= 5; i++ {
		y := maxY * float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`, left, py(y), width-right, py(y))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" font-size="11">%s</text>`, left-5, py(y)+4, trim(y))
	}
	ticks := map[float64]bool{}
	for _, s := range ss {
		for _, x := range s.x {
			if !ticks[x] {
				ticks[x] = true
				fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" font-size="11">%s</text>`, px(x), height-bott+16, xTick(x))
			}
		}
	}
	for i, s := range ss {
		c := palette[i%len(palette)]
		var pts []string
		for j := range s.x {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(s.x[j]), py(s.y[j])))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`, px(s.x[j]), py(s.y[j]), c)
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, c, strings.Join(pts, " "))
		legend(&b, i, s.name, c)
	}
	axes(&b, xLabel, yLabel)
	return b.String()
}

// barChart draws groups of bars: one group per category, one bar per series.
func barChart(title, yLabel string, categories []string, ss []series) string {
	var b strings.Builder
	maxY := 0.0
	for _, s := range ss {
		for _, y := range s.y {
			maxY = math.Max(maxY, y)
		}
	}
	if maxY == 0 || len(categories) == 0 {
		return ""
	}
	maxY = niceCeil(maxY)
	py := func(y float64) float64 { return height - bott - y/maxY*(height-top-bott) }
	header(&b, title)
	for i := 0; i <= 5; i++ {
		y := maxY * float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`, left, py(y), width-right, py(y))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" font-size="11">%s</text>`, left-5, py(y)+4, trim(y))
	}
	groupW := float64(width-left-right) / float64(len(categories))
	barW := groupW * 0.8 / float64(len(ss))
	for ci, cat := range categories {
		gx := float64(left) + groupW*float64(ci) + groupW*0.1
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" font-size="11">%s</text>`, gx+groupW*0.4, height-bott+16, cat)
		for si, s := range ss {
			if ci >= len(s.y) {
				continue
			}
			x := gx + barW*float64(si)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, x, py(s.y[ci]), barW-2, py(0)-py(s.y[ci]), palette[si%len(palette)])
		}
	}
	for si, s := range ss {
		legend(&b, si, s.name, palette[si%len(palette)])
	}
	axes(&b, "", yLabel)
	return b.String()
}

func header(b *strings.Builder, title string) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif">`, width, height)
	fmt.Fprintf(b, `<rect width="100%%" height="100%%" fill="white"/>`)
	fmt.Fprintf(b, `<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`, left, esc(title))
}

func legend(b *strings.Builder, i int, name, color string) {
	y := top + 10 + 18*i
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/>`, width-right+15, y-10, color)
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="12">%s</text>`, width-right+32, y, esc(name))
}

func axes(b *strings.Builder, xLabel, yLabel string) {
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`, left, height-bott, width-right, height-bott)
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`, left, top, left, height-bott)
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle" font-size="12">%s</text>`, (left+width-right)/2, height-10, esc(xLabel))
	fmt.Fprintf(b, `<text x="16" y="%d" font-size="12" transform="rotate(-90 16 %d)" text-anchor="middle">%s</text>`, (top+height-bott)/2, (top+height-bott)/2, esc(yLabel))
	b.WriteString("</svg>\n")
}

func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func trim(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2g", v)
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// linearChart is lineChart with a linear x axis starting at zero.
func linearChart(title, xLabel, yLabel string, ss []series) string {
	var b strings.Builder
	maxX, maxY := 0.0, 0.0
	for _, s := range ss {
		for i := range s.x {
			maxX, maxY = math.Max(maxX, s.x[i]), math.Max(maxY, s.y[i])
		}
	}
	if maxX == 0 || maxY == 0 {
		return ""
	}
	maxX, maxY = niceCeil(maxX), niceCeil(maxY)
	px := func(x float64) float64 { return left + x/maxX*(width-left-right) }
	py := func(y float64) float64 { return height - bott - y/maxY*(height-top-bott) }
	header(&b, title)
	for i := 0; i <= 5; i++ {
		y, x := maxY*float64(i)/5, maxX*float64(i)/5
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`, left, py(y), width-right, py(y))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" font-size="11">%s</text>`, left-5, py(y)+4, trim(y))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" font-size="11">%s</text>`, px(x), height-bott+16, trim(x))
	}
	for i, s := range ss {
		c := palette[i%len(palette)]
		var pts []string
		for j := range s.x {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(s.x[j]), py(s.y[j])))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, c, strings.Join(pts, " "))
		legend(&b, i, s.name, c)
	}
	axes(&b, xLabel, yLabel)
	return b.String()
}
