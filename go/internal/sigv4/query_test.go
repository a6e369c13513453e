package sigv4

import (
	"slices"
	"testing"
)

// TestQueryValuesAreApart: Values' slices share one array, yet a value
// appended to one key's never lands in another's.
func TestQueryValuesAreApart(t *testing.T) {
	q, err := ParseQuery("a=1&b=2&a=3&c")
	if err != nil {
		t.Fatal(err)
	}
	_ = append(q.Values["b"], "x")
	_ = append(q.Values["a"], "y")
	if !slices.Equal(q.Values["a"], []string{"1", "3"}) || !slices.Equal(q.Values["b"], []string{"2"}) || !slices.Equal(q.Values["c"], []string{""}) {
		t.Fatalf("values %v", q.Values)
	}
	if want := []QueryParam{{"a", "1"}, {"b", "2"}, {"a", "3"}, {"c", ""}}; !slices.Equal(q.Params, want) {
		t.Fatalf("params %v", q.Params)
	}
}
