package config

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// The defaults libosp exports are the ones Parse applies: a document with
// only a port parses to Defaults() with that port, and an entry with only
// host, port and credentials to DefaultBucket() with those.
func TestParseAppliesTheExportedDefaults(t *testing.T) {
	c, err := Parse([]byte(`{"http_port": 0, "cos_map": {"b": {"host": "h", "port": 1, "api_key": "k"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Defaults()
	zero := 0
	want.HTTPPort = &zero
	got := *c
	got.CosMap = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parsed config differs from Defaults():\n got %+v\nwant %+v", got, want)
	}
	wantBucket := DefaultBucket()
	wantBucket.Host, wantBucket.Port, wantBucket.APIKey = "h", 1, "k"
	if !reflect.DeepEqual(*c.CosMap["b"], wantBucket) {
		t.Errorf("parsed entry differs from DefaultBucket():\n got %+v\nwant %+v", *c.CosMap["b"], wantBucket)
	}
}

// The exported document names every key Parse accepts, each at its default,
// and parses back (with a port) to the same configuration.
func TestDefaultsJSONListsEveryKey(t *testing.T) {
	data, err := DefaultsJSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Config map[string]json.RawMessage `json:"config"`
		Bucket map[string]json.RawMessage `json:"bucket"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for want, got := range map[reflect.Type]map[string]json.RawMessage{
		reflect.TypeOf(Config{}): doc.Config, reflect.TypeOf(Bucket{}): doc.Bucket,
	} {
		for i := 0; i < want.NumField(); i++ {
			key := strings.Split(want.Field(i).Tag.Get("json"), ",")[0]
			if _, ok := got[key]; !ok {
				t.Errorf("%s key %q missing from the defaults document", want.Name(), key)
			}
		}
		if len(got) != want.NumField() {
			t.Errorf("%s: %d keys exported for %d fields", want.Name(), len(got), want.NumField())
		}
	}
	if string(doc.Config["verify"]) != "true" || string(doc.Config["log_level"]) != `"info"` {
		t.Errorf("verify %s, log_level %s", doc.Config["verify"], doc.Config["log_level"])
	}
	doc.Config["http_port"] = json.RawMessage("0")
	back, _ := json.Marshal(doc.Config)
	if _, err := Parse(back); err != nil {
		t.Errorf("the defaults document does not parse: %v", err)
	}
}

func TestVerifyMarshalsAsItIsRead(t *testing.T) {
	for _, v := range []Verify{{}, {Skip: true}, {CABundle: "/ca.pem"}} {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var back Verify
		if err := json.Unmarshal(data, &back); err != nil || back != v {
			t.Errorf("%+v -> %s -> %+v, %v", v, data, back, err)
		}
	}
}
