// Command nullbackend is an S3-shaped HTTP server that answers from memory as
// fast as it can, to isolate the cost of whatever sits in front of it. It
// checks no signature.
//
//	GET  /bucket/size-N          -> N bytes (any key: 4 KiB unless it is size-N)
//	GET  /bucket?list-type=2     -> a ListBucketResult of 1000 keys
//	GET  /bucket?versioning      -> versioning never enabled (the verifying
//	                                peer, versitygw s3, asks before each PUT)
//	HEAD /bucket/...             -> the headers of the GET
//	PUT  /bucket/...             -> drains the body, 200 with an ETag
//
// GET bodies are written from one 1 MiB block, so size-1073741824 costs no
// more memory than size-4096; PUT bodies (aws-chunked ones too, framing and
// all) are read through a pooled buffer and dropped.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

const versioningXML = `<?xml version="1.0" encoding="UTF-8"?><VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>`

var (
	blob    = make([]byte, 1<<20)
	listXML []byte
	bufs    = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}
)

func init() {
	for i := range blob {
		blob[i] = byte('a' + i%26)
	}
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bench</Name><Prefix></Prefix><KeyCount>1000</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>`)
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&b, `<Contents><Key>list/key-%04d</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified><ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass></Contents>`, i)
	}
	b.WriteString(`</ListBucketResult>`)
	listXML = []byte(b.String())
}

func handle(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	switch r.Method {
	case http.MethodPut:
		bp := bufs.Get().(*[]byte)
		io.CopyBuffer(io.Discard, r.Body, *bp)
		bufs.Put(bp)
		h.Set("ETag", `"d41d8cd98f00b204e9800998ecf8427e"`)
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
	case http.MethodGet, http.MethodHead:
		path := strings.TrimPrefix(r.URL.Path, "/")
		if !strings.Contains(path, "/") && r.URL.Query().Has("versioning") {
			h.Set("Content-Type", "application/xml")
			h.Set("Content-Length", strconv.Itoa(len(versioningXML)))
			if r.Method == http.MethodGet {
				io.WriteString(w, versioningXML)
			}
			return
		}
		if !strings.Contains(path, "/") || strings.HasSuffix(path, "/") { // bucket level: a listing
			h.Set("Content-Type", "application/xml")
			h.Set("Content-Length", strconv.Itoa(len(listXML)))
			if r.Method == http.MethodGet {
				w.Write(listXML)
			}
			return
		}
		size := int64(4096)
		if i := strings.LastIndex(path, "size-"); i >= 0 {
			if n, err := strconv.ParseInt(path[i+5:], 10, 64); err == nil {
				size = n
			}
		}
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		h.Set("ETag", `"0123456789abcdef0123456789abcdef"`)
		h.Set("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")
		if r.Method == http.MethodHead {
			return
		}
		for size > 0 {
			n := int64(len(blob))
			if size < n {
				n = size
			}
			if _, err := w.Write(blob[:n]); err != nil {
				return
			}
			size -= n
		}
	default:
		w.WriteHeader(http.StatusNotImplemented)
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ln.Addr().String()) // the orchestrator reads the port from here
	log.Fatal((&http.Server{Handler: http.HandlerFunc(handle)}).Serve(ln))
}
