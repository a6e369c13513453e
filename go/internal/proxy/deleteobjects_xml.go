package proxy

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// s3Namespace is the namespace of S3's XML documents.
const s3Namespace = "http://s3.amazonaws.com/doc/2006-03-01/"

// deleteRequest is a DeleteObjects body as the proxy read it.
type deleteRequest struct {
	quiet   string // the <Quiet> text, "" when absent
	objects []deleteObject
}

// deleteObject is one <Object>: its key and the other ObjectIdentifier
// fields, as text.
type deleteObject struct {
	key, versionID, eTag, lastModifiedTime, size string
}

// objectFields are the children an <Object> may have, each at most once.
var objectFields = map[string]func(o *deleteObject) *string{
	"Key":              func(o *deleteObject) *string { return &o.key },
	"VersionId":        func(o *deleteObject) *string { return &o.versionID },
	"ETag":             func(o *deleteObject) *string { return &o.eTag },
	"LastModifiedTime": func(o *deleteObject) *string { return &o.lastModifiedTime },
	"Size":             func(o *deleteObject) *string { return &o.size },
}

// parseDelete reads a DeleteObjects body strictly: one <Delete> with at
// most one <Quiet> and 1 to 1000 <Object>s, each with one non-empty <Key>
// and at most one of each other field; text only inside fields, nothing
// but whitespace and comments between elements. A body the proxy accepts
// thus names the same keys to any XML parser, so the backend deletes what
// the validator was asked about.
func parseDelete(body []byte) (deleteRequest, error) {
	var req deleteRequest
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	if err := startOf(d, "Delete"); err != nil {
		return req, err
	}
	seenQuiet := false
	for {
		tok, err := nextToken(d, true)
		if err != nil {
			return req, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case !s3Name(t.Name):
				return req, malformedXML()
			case t.Name.Local == "Quiet" && !seenQuiet:
				seenQuiet = true
				if req.quiet, err = textOf(d); err != nil {
					return req, err
				}
				if q := strings.ToLower(req.quiet); q != "true" && q != "false" {
					return req, malformedXML()
				}
			case t.Name.Local == "Object":
				if len(req.objects) == maxDeleteKeys {
					return req, malformedXML() // S3: more than 1000 keys
				}
				obj, err := objectOf(d)
				if err != nil {
					return req, err
				}
				req.objects = append(req.objects, obj)
			default:
				return req, malformedXML()
			}
		case xml.EndElement: // </Delete>: the decoder matched it
			if len(req.objects) == 0 {
				return req, malformedXML()
			}
			return req, endOfDocument(d)
		default:
			return req, malformedXML()
		}
	}
}

// startOf reads up to the document's root element, which must be name.
func startOf(d *xml.Decoder, name string) error {
	for {
		tok, err := nextToken(d, true)
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.ProcInst:
		case xml.StartElement:
			if t.Name.Local != name || !s3Name(t.Name) {
				return malformedXML()
			}
			return nil
		default: // text, a DOCTYPE, the end
			return malformedXML()
		}
	}
}

// endOfDocument accepts only whitespace and comments after the root.
func endOfDocument(d *xml.Decoder) error {
	tok, err := nextToken(d, true)
	if err == nil && tok != nil {
		return malformedXML()
	}
	return err
}

// nextToken is d's next token past whitespace and, if comments is set,
// comments; nil at the end of the document. What the decoder refuses is
// MalformedXML.
func nextToken(d *xml.Decoder, comments bool) (xml.Token, error) {
	for {
		tok, err := d.Token()
		switch {
		case errors.Is(err, io.EOF):
			return nil, nil
		case err != nil:
			return nil, malformedXML()
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) == 0 {
				continue
			}
		case xml.Comment:
			if comments {
				continue
			}
		}
		return tok, nil
	}
}

// objectOf reads an <Object>'s children, after its start tag.
func objectOf(d *xml.Decoder) (deleteObject, error) {
	var obj deleteObject
	seen := map[string]bool{}
	for {
		tok, err := nextToken(d, false) // no comment inside an <Object>
		if err != nil {
			return obj, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			field, ok := objectFields[t.Name.Local]
			if !ok || !s3Name(t.Name) || seen[t.Name.Local] {
				return obj, malformedXML()
			}
			seen[t.Name.Local] = true
			if *field(&obj), err = textOf(d); err != nil {
				return obj, err
			}
		case xml.EndElement:
			if obj.key == "" {
				return obj, malformedXML()
			}
			return obj, nil
		default:
			return obj, malformedXML()
		}
	}
}

// textOf reads an element's text up to its end tag: character data only.
func textOf(d *xml.Decoder) (string, error) {
	var b strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			return "", malformedXML()
		}
		switch t := tok.(type) {
		case xml.CharData:
			b.Write(t)
		case xml.EndElement:
			return b.String(), nil
		default:
			return "", malformedXML()
		}
	}
}

// s3Name accepts an element in S3's namespace or in none.
func s3Name(n xml.Name) bool { return n.Space == "" || n.Space == s3Namespace }

// rewrite is the request's body naming only objects.
func (req deleteRequest) rewrite(objects []deleteObject) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString(`<Delete xmlns="` + s3Namespace + `">`)
	if req.quiet != "" {
		element(&b, "Quiet", req.quiet)
	}
	for _, o := range objects {
		b.WriteString("<Object>")
		element(&b, "Key", o.key)
		for _, f := range []struct{ name, value string }{
			{"VersionId", o.versionID}, {"ETag", o.eTag}, {"LastModifiedTime", o.lastModifiedTime}, {"Size", o.size},
		} {
			if f.value != "" {
				element(&b, f.name, f.value)
			}
		}
		b.WriteString("</Object>")
	}
	b.WriteString("</Delete>")
	return b.Bytes()
}

// element writes <name>text</name>, text escaped.
func element(b *bytes.Buffer, name, text string) {
	b.WriteString("<" + name + ">")
	_ = xml.EscapeText(b, []byte(text)) // a bytes.Buffer does not fail
	b.WriteString("</" + name + ">")
}

// deleteResult is a DeleteResult document: entries (raw XML) and an
// AccessDenied <Error> for each denied object.
func deleteResult(entries []byte, denied []deleteObject) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString(`<DeleteResult xmlns="` + s3Namespace + `">`)
	b.Write(entries)
	for _, o := range denied {
		b.WriteString("<Error>")
		element(&b, "Key", o.key)
		if o.versionID != "" {
			element(&b, "VersionId", o.versionID)
		}
		b.WriteString("<Code>AccessDenied</Code><Message>Access Denied</Message></Error>")
	}
	b.WriteString("</DeleteResult>")
	return b.Bytes()
}

// deleteResultEntries returns the <Deleted> and <Error> elements of a
// backend's DeleteResult, as raw XML to pass on; in quiet mode the errors
// only, as S3 lists them (some backends, versitygw, list all).
func deleteResultEntries(raw []byte, quiet bool) ([]byte, error) {
	var result struct {
		XMLName xml.Name `xml:"DeleteResult"`
		Entries []struct {
			XMLName xml.Name
			Inner   []byte `xml:",innerxml"`
		} `xml:",any"`
	}
	if err := xml.Unmarshal(raw, &result); err != nil {
		return nil, fmt.Errorf("read the backend's DeleteResult: %w", err)
	}
	var b bytes.Buffer
	for _, e := range result.Entries {
		switch e.XMLName.Local {
		case "Deleted", "Error":
			if quiet && e.XMLName.Local == "Deleted" {
				continue
			}
			b.WriteString("<" + e.XMLName.Local + ">")
			b.Write(e.Inner)
			b.WriteString("</" + e.XMLName.Local + ">")
		default:
			return nil, fmt.Errorf("the backend's DeleteResult has a <%s>", e.XMLName.Local)
		}
	}
	return b.Bytes(), nil
}
