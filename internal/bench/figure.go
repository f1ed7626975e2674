package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Figure is one measured value.
type Figure struct {
	Name     string
	Value    float64 // NaN when it could not be measured (printed NA)
	Unit     string
	Decimals int    // shown after the point
	Target   Target // the zero Target only reports
	Note     string // how it was measured, or why it is NA
}

// Target is a bound a figure should stay within.
type Target struct {
	Op    string // ">=" or "<="; "" reports without a bound
	Limit float64
}

// AtLeast is the target of a figure that should be v or more.
func AtLeast(v float64) Target { return Target{Op: ">=", Limit: v} }

// AtMost is the target of a figure that should be v or less.
func AtMost(v float64) Target { return Target{Op: "<=", Limit: v} }

// String renders the target as the table shows it.
func (t Target) String() string {
	if t.Op == "" {
		return "report"
	}
	return t.Op + " " + strconv.FormatFloat(t.Limit, 'f', -1, 64)
}

// Met says whether v is within the target: "yes", "no", or "-" when there is
// no bound or no value.
func (t Target) Met(v float64) string {
	switch {
	case t.Op == "" || math.IsNaN(v):
		return "-"
	case t.Op == ">=" && v >= t.Limit, t.Op == "<=" && v <= t.Limit:
		return "yes"
	}
	return "no"
}

// NA is the value of a figure that could not be measured.
var NA = math.NaN()

// ValueText renders the value, or "NA".
func (f Figure) ValueText() string {
	if math.IsNaN(f.Value) {
		return "NA"
	}
	return strconv.FormatFloat(f.Value, 'f', f.Decimals, 64)
}

// Print writes the table, then one "BENCH <name> <value> <unit>" line per figure.
func Print(w io.Writer, figures []Figure) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FIGURE\tVALUE\tUNIT\tTARGET\tMET\tNOTE")
	for _, f := range figures {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.Name, f.ValueText(), f.Unit, f.Target, f.Target.Met(f.Value), f.Note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, f := range figures {
		if _, err := fmt.Fprintf(w, "BENCH %s %s %s\n", f.Name, f.ValueText(), f.Unit); err != nil {
			return err
		}
	}
	return nil
}

// median of xs; NaN when xs is empty.
func median(xs []float64) float64 { return quantile(xs, 0.5) }

// quantile returns the q-quantile of xs (0 <= q <= 1) by the nearest-rank method;
// NaN when xs is empty.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(q * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// ratios returns a[i]/b[i] for each round.
func ratios(a, b []float64) []float64 {
	out := make([]float64, 0, len(a))
	for i := range min(len(a), len(b)) {
		out = append(out, a[i]/b[i])
	}
	return out
}

// spread renders the values of the rounds, for a figure's note.
func spread(xs []float64, decimals int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'f', decimals, 64)
	}
	return strings.Join(parts, " ")
}
