package config

import (
	"strings"
	"testing"
)

func TestCheckPatternRefusesTypos(t *testing.T) {
	for key, want := range map[string]string{
		"team-*-a":                     "one '*', at the end",
		"team-a-**":                    "one '*', at the end",
		"**":                           "one '*', at the end",
		"*team":                        "one '*', at the end",
		"team a-*":                     "has a character no bucket name has",
		"team/a-*":                     "has a character no bucket name has",
		"téam-*":                       "has a character no bucket name has",
		strings.Repeat("a", 255) + "*": "no bucket name",
	} {
		err := CheckPattern(key)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckPattern(%q) = %v, want %q", key, err, want)
		}
	}
	for _, key := range []string{"*", "team-a-*", "Legacy_Team*", strings.Repeat("a", 254) + "*", "exact-name"} {
		if err := CheckPattern(key); err != nil {
			t.Errorf("CheckPattern(%q) = %v, want nil", key, err)
		}
	}
}

func TestParseRefusesBadPatternsNamingTheKey(t *testing.T) {
	entry := `{"host": "h", "port": 1, "access_key": "a", "secret_key": "s"}`
	_, err := Parse([]byte(`{"http_port": 0, "cos_map": {"team-*-a": ` + entry + `, "a b*": ` + entry + `, "": ` + entry + `, "ok-*": ` + entry + `}}`))
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{`cos_map["team-*-a"]: a pattern has one '*'`, `cos_map["a b*"]: the pattern's prefix "a b"`, "cos_map has an empty bucket name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), `"ok-*"`) {
		t.Errorf("a good pattern is refused:\n%v", err)
	}
}

func TestResolverExactThenLongestPattern(t *testing.T) {
	b := func() *Bucket { return &Bucket{Host: "h"} }
	cosMap := map[string]*Bucket{"team-a-exact": b(), "team-a-*": b(), "team-*": b(), "*": b(), "team-a-long-*": b()}
	r := NewResolver(cosMap)
	for name, want := range map[string]string{
		"team-a-exact":   "team-a-exact",
		"team-a-exact2":  "team-a-*",
		"team-a-long-x":  "team-a-long-*",
		"team-a-long-":   "team-a-long-*",
		"team-a-":        "team-a-*",
		"team-a":         "team-*",
		"team-b-x":       "team-*",
		"TEAM-A-x":       "*",
		"other":          "*",
		"team-a-exact-2": "team-a-*",
	} {
		e, ok := r.Lookup(name)
		if !ok || e.Key != want || e.Bucket != cosMap[want] || e.Pattern != IsPattern(want) {
			t.Errorf("Lookup(%q) = %q %v, want %q", name, e.Key, ok, want)
		}
	}
	delete(cosMap, "*")
	r = NewResolver(cosMap)
	for _, name := range []string{"TEAM-A-x", "team", "other"} {
		if e, ok := r.Lookup(name); ok {
			t.Errorf("Lookup(%q) = %q, want no entry", name, e.Key)
		}
	}
	var keys []string
	for _, p := range r.Patterns() {
		keys = append(keys, p.Key)
	}
	if got := strings.Join(keys, " "); got != "team-a-long-* team-a-* team-*" {
		t.Errorf("patterns in order %q", got)
	}
}

func BenchmarkResolverLookup(b *testing.B) {
	cosMap := map[string]*Bucket{"*": {}}
	for i := 0; i < 50; i++ {
		cosMap["team-"+strings.Repeat("x", i)+"-*"] = &Bucket{}
		cosMap["bucket-"+strings.Repeat("y", i)] = &Bucket{}
	}
	r := NewResolver(cosMap)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r.Lookup("zzz-not-a-team")
	}
}
