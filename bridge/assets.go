package bridge

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"
)

// The handshaker, embedded (go:embed needs package variables; they are
// read-only): the classic script, and the ES module that imports it and
// exports its API.
var (
	//go:embed netget-handshaker.js
	handshakerJS []byte
	//go:embed netget-handshaker.mjs
	handshakerMJS []byte
)

// ScriptCacheMaxAge is how long browsers may use the handshaker without
// asking again; after that they revalidate with its ETag.
const ScriptCacheMaxAge = 5 * time.Minute

// asset is one embedded file served with caching headers.
type asset struct {
	name string
	body []byte
	etag string
}

func newAsset(name string, body []byte) asset {
	sum := sha256.Sum256(body)
	return asset{name: name, body: body, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
}

// scriptAsset is GET /netget-handshaker.js.
func scriptAsset() asset { return newAsset("netget-handshaker.js", handshakerJS) }

// moduleAsset is GET /netget-handshaker.mjs.
func moduleAsset() asset { return newAsset("netget-handshaker.mjs", handshakerMJS) }

// serve answers GET and HEAD with the body, and If-None-Match with 304.
// Any page may load it, as a script or (CORS) as a module.
func (a asset) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/javascript; charset=utf-8")
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(ScriptCacheMaxAge/time.Second)))
	h.Set("ETag", a.etag)
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
}

// HandshakerScript returns the embedded classic handshaker script.
func HandshakerScript() []byte { return bytes.Clone(handshakerJS) }
