//go:build ignore

// gen writes operations_gen.go, the table Name matches requests against,
// from testdata/operations.json, an extract of the S3 API model that
// botocore ships (botocore/data/s3/2006-03-01/service-2.json[.gz]). It is
// a Go program so that `go generate ./internal/s3op` needs nothing but Go.
//
// To refresh the extract from a newer botocore first:
//
//	go run gen.go -model /path/to/botocore/data/s3/2006-03-01/service-2.json.gz
//
// For each operation the extract keeps its method and request URI (which
// say whether a bucket and a key are addressed and which query keys, with
// which values, the operation requires), the query keys and header names
// of its input members, and which of them are required: ListParts,
// AbortMultipartUpload and CompleteMultipartUpload are told from GetObject,
// DeleteObject and nothing only by their required uploadId, CopyObject from
// PutObject only by its required x-amz-copy-source.
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"go/format"
	"io"
	"log"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
)

// extracted is one operation of the model, as testdata/operations.json
// keeps it.
type extracted struct {
	Name            string   `json:"name"`
	Method          string   `json:"method"`
	RequestURI      string   `json:"requestUri"`
	RequiredQuery   []string `json:"requiredQuery,omitempty"`
	OptionalQuery   []string `json:"optionalQuery,omitempty"`
	RequiredHeaders []string `json:"requiredHeaders,omitempty"`
	OptionalHeaders []string `json:"optionalHeaders,omitempty"`
	Deprecated      bool     `json:"deprecated,omitempty"`
}

// excluded are the model's operations the table leaves out, each with the
// name the proxy gives its request instead and why.
var excluded = map[string]struct{ namedAs, why string }{
	// Deprecated forms of the *Configuration operations, sent the same way.
	"GetBucketLifecycle":    {"GetBucketLifecycleConfiguration", "deprecated; the same request as its successor"},
	"PutBucketLifecycle":    {"PutBucketLifecycleConfiguration", "deprecated; the same request as its successor"},
	"GetBucketNotification": {"GetBucketNotificationConfiguration", "deprecated; the same request as its successor"},
	"PutBucketNotification": {"PutBucketNotificationConfiguration", "deprecated; the same request as its successor"},
	// S3 Express directory buckets list at a zonal endpoint with the same
	// GET / as ListBuckets; the proxy answers GET / itself as ListBuckets.
	"ListDirectoryBuckets": {"ListBuckets", "S3 Express; the same request as ListBuckets"},
	// S3 Object Lambda's endpoint, addressed by host prefix, not a bucket.
	"WriteGetObjectResponse": {"Unknown", "S3 Object Lambda endpoint, no bucket in its URI"},
}

func main() {
	model := flag.String("model", "", "botocore's service-2.json[.gz] to extract testdata/operations.json from first")
	flag.Parse()
	if *model != "" {
		if err := extract(*model, "testdata/operations.json"); err != nil {
			log.Fatal(err)
		}
	}
	src, err := generate("testdata/operations.json")
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("operations_gen.go", src, 0o644); err != nil {
		log.Fatal(err)
	}
}

// extract reads botocore's model and writes the extract.
func extract(modelPath, out string) error {
	f, err := os.Open(modelPath)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(modelPath, ".gz") {
		if r, err = gzip.NewReader(f); err != nil {
			return fmt.Errorf("%s: %w", modelPath, err)
		}
	}
	var model struct {
		Operations map[string]struct {
			HTTP struct {
				Method     string `json:"method"`
				RequestURI string `json:"requestUri"`
			} `json:"http"`
			Input struct {
				Shape string `json:"shape"`
			} `json:"input"`
			Deprecated bool `json:"deprecated"`
		} `json:"operations"`
		Shapes map[string]struct {
			Required []string `json:"required"`
			Members  map[string]struct {
				Location     string `json:"location"`
				LocationName string `json:"locationName"`
			} `json:"members"`
		} `json:"shapes"`
	}
	if err := json.NewDecoder(r).Decode(&model); err != nil {
		return fmt.Errorf("%s: %w", modelPath, err)
	}
	var ops []extracted
	for name, op := range model.Operations {
		e := extracted{Name: name, Method: op.HTTP.Method, RequestURI: op.HTTP.RequestURI, Deprecated: op.Deprecated}
		shape := model.Shapes[op.Input.Shape]
		for member, m := range shape.Members {
			required := slices.Contains(shape.Required, member)
			switch {
			case m.Location == "querystring" && required:
				e.RequiredQuery = append(e.RequiredQuery, m.LocationName)
			case m.Location == "querystring":
				e.OptionalQuery = append(e.OptionalQuery, m.LocationName)
			case m.Location == "header" && required:
				e.RequiredHeaders = append(e.RequiredHeaders, strings.ToLower(m.LocationName))
			case m.Location == "header":
				e.OptionalHeaders = append(e.OptionalHeaders, strings.ToLower(m.LocationName))
			}
		}
		for _, l := range [][]string{e.RequiredQuery, e.OptionalQuery, e.RequiredHeaders, e.OptionalHeaders} {
			slices.Sort(l)
		}
		ops = append(ops, e)
	}
	slices.SortFunc(ops, func(a, b extracted) int { return strings.Compare(a.Name, b.Name) })
	var buf bytes.Buffer
	buf.WriteString("[\n")
	for i, op := range ops {
		line, err := json.Marshal(op)
		if err != nil {
			return err
		}
		buf.Write(line)
		if i < len(ops)-1 {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
	}
	buf.WriteString("]\n")
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

// param is a query key an operation requires, with the value it must have
// ("" for any, as in ?uploadId=...; a flag such as ?acl has none).
type param struct{ key, value string }

// op is one row of the generated table.
type op struct {
	name, method, scope string
	query               []param
	headers             []string
	queryMembers        map[string]bool
	headerMembers       map[string]bool
}

// parse splits an extracted operation's request URI into its scope and
// required query.
func parse(e extracted) (op, bool) {
	path, rawQuery, _ := strings.Cut(e.RequestURI, "?")
	o := op{name: e.Name, method: e.Method, queryMembers: map[string]bool{}, headerMembers: map[string]bool{}}
	switch path {
	case "/":
		o.scope = "serviceScope"
	case "/{Bucket}":
		o.scope = "bucketScope"
	case "/{Bucket}/{Key+}":
		o.scope = "objectScope"
	default:
		return op{}, false
	}
	if rawQuery != "" {
		for pair := range strings.SplitSeq(rawQuery, "&") {
			k, v, _ := strings.Cut(pair, "=")
			o.query = append(o.query, param{k, v})
			o.queryMembers[k] = true
		}
	}
	for _, k := range e.RequiredQuery {
		o.query = append(o.query, param{k, ""})
		o.queryMembers[k] = true
	}
	for _, k := range e.OptionalQuery {
		o.queryMembers[k] = true
	}
	o.headers = append(o.headers, e.RequiredHeaders...)
	for _, h := range append(slices.Clone(e.RequiredHeaders), e.OptionalHeaders...) {
		o.headerMembers[h] = true
	}
	return o, true
}

func generate(extractPath string) ([]byte, error) {
	data, err := os.ReadFile(extractPath)
	if err != nil {
		return nil, err
	}
	var ops []extracted
	if err := json.Unmarshal(data, &ops); err != nil {
		return nil, fmt.Errorf("%s: %w", extractPath, err)
	}
	var table []op
	for _, e := range ops {
		if _, skip := excluded[e.Name]; skip {
			continue
		}
		o, ok := parse(e)
		if !ok {
			return nil, fmt.Errorf("%s: request URI %q is not /, /{Bucket} or /{Bucket}/{Key+}; add it to excluded", e.Name, e.RequestURI)
		}
		table = append(table, o)
	}
	// Subresource keys: flags in a request URI (?acl) and required query
	// members (uploadId, partNumber, id). Such a key in a request that an
	// operation does not take rules that operation out. Keys with a
	// required value (list-type=2) are parameters of one operation, not
	// subresources: S3 answers GET /b?inventory&list-type=2 as the
	// inventory listing.
	subresources := map[string]bool{}
	significant := map[string]bool{}
	distinguishing := map[string]bool{}
	for _, o := range table {
		for _, p := range o.query {
			significant[p.key] = true
			if p.value == "" {
				subresources[p.key] = true
			}
		}
		for _, h := range o.headers {
			distinguishing[h] = true
		}
	}
	// Two operations that ask the same of a request could never be told
	// apart: every such request would be Unknown.
	seen := map[string]string{}
	for _, o := range table {
		sig := fmt.Sprint(o.method, o.scope, o.query, o.headers)
		if other, dup := seen[sig]; dup {
			return nil, fmt.Errorf("%s and %s are the same request; exclude one", other, o.name)
		}
		seen[sig] = o.name
	}

	var b bytes.Buffer
	b.WriteString("// Code generated by gen.go from testdata/operations.json; DO NOT EDIT.\n\npackage s3op\n\n")
	b.WriteString("// operations is every S3 operation of botocore's model that a client can send through the proxy.\nvar operations = []operation{\n")
	for _, o := range table {
		fmt.Fprintf(&b, "\t{name: %q, method: %q, scope: %s", o.name, o.method, o.scope)
		if len(o.query) > 0 {
			b.WriteString(", query: []param{")
			for i, p := range o.query {
				if i > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "{%q, %q}", p.key, p.value)
			}
			b.WriteString("}")
		}
		if len(o.headers) > 0 {
			fmt.Fprintf(&b, ", headers: %s", goStrings(canonical(o.headers)))
		}
		var takes, takesHeaders []string
		for k := range subresources {
			if o.queryMembers[k] {
				takes = append(takes, k)
			}
		}
		for h := range distinguishing {
			if o.headerMembers[h] {
				takesHeaders = append(takesHeaders, h)
			}
		}
		if len(takes) > 0 {
			slices.Sort(takes)
			fmt.Fprintf(&b, ", takes: %s", goStrings(takes))
		}
		if len(takesHeaders) > 0 {
			fmt.Fprintf(&b, ", takesHeaders: %s", goStrings(canonical(takesHeaders)))
		}
		b.WriteString("},\n")
	}
	b.WriteString("}\n\n")
	b.WriteString("// subresources are the query keys that select an operation: present in a request, they rule out every operation that does not take them.\n")
	fmt.Fprintf(&b, "var subresources = %s\n\n", goSet(subresources))
	b.WriteString("// significant are the query keys some operation requires; one given twice makes a request ambiguous.\n")
	fmt.Fprintf(&b, "var significant = %s\n\n", goSet(significant))
	b.WriteString("// distinguishingHeaders are the headers some operation requires; present in a request, they rule out every operation that does not take them.\n")
	fmt.Fprintf(&b, "var distinguishingHeaders = %s\n\n", goStrings(canonical(slices.Collect(maps.Keys(distinguishing)))))
	b.WriteString("// excluded are the model's operations left out of the table, and the name their request gets instead.\nvar excluded = map[string]string{\n")
	for _, n := range slices.Sorted(maps.Keys(excluded)) {
		fmt.Fprintf(&b, "\t%q: %q, // %s\n", n, excluded[n].namedAs, excluded[n].why)
	}
	b.WriteString("}\n")
	return format.Source(b.Bytes())
}

func canonical(headers []string) []string {
	out := make([]string, len(headers))
	for i, h := range headers {
		out[i] = http.CanonicalHeaderKey(h)
	}
	slices.Sort(out)
	return out
}

// goStrings is s as a Go []string literal.
func goStrings(s []string) string { return "[]string{" + joinf("%q", s) + "}" }

// goSet is m's keys, sorted, as a Go map[string]bool literal.
func goSet(m map[string]bool) string {
	return "map[string]bool{" + joinf("%q: true", slices.Sorted(maps.Keys(m))) + "}"
}

// joinf formats each item with format and joins them with ", ".
func joinf(format string, items []string) string {
	parts := make([]string, len(items))
	for i, item := range items {
		parts[i] = fmt.Sprintf(format, item)
	}
	return strings.Join(parts, ", ")
}
