package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/p2p"
	"github.com/netget/netget-peer/record"
)

// servicesVersion is the format version of services.json.
const servicesVersion = 1

// servicesFile is services.json: the set of services the daemon provides,
// restored when it starts again. Example:
//
//	{"version":1,"services":[{"name":"DatabaseService","meta":{"region":"eu"},"ttl":"1h0m0s"}]}
type servicesFile struct {
	Version  int            `json:"version"`
	Services []savedService `json:"services"`
}

type savedService struct {
	Name string            `json:"name"`
	Meta map[string]string `json:"meta,omitempty"`
	TTL  Duration          `json:"ttl"`
}

// maxServicesFile bounds services.json: about 800 services with the most
// metadata a record carries.
const maxServicesFile = 16 << 20

// loadServices reads the service set at path; a missing file is an empty
// set. The file must be one the data dir's owner wrote (p2p.ReadTrustedFile:
// theirs or root's, writable by no one else, not a symlink), or another
// user could have services provided under this node's key. Every entry is
// validated as a provide request would be.
func loadServices(path string) ([]dht.Spec, error) {
	b, err := p2p.ReadTrustedFile(path, maxServicesFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrServicesFile, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f servicesFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrServicesFile, path, err)
	}
	if f.Version != servicesVersion {
		return nil, fmt.Errorf("%w: %s: version %d, want %d", ErrServicesFile, path, f.Version, servicesVersion)
	}
	specs := make([]dht.Spec, 0, len(f.Services))
	seen := make(map[string]bool)
	for _, s := range f.Services {
		spec, e := checkSpec(s.Name, s.Meta, s.TTL)
		if e != nil {
			return nil, fmt.Errorf("%w: %s: service %q: %s", ErrServicesFile, path, s.Name, e.Message)
		}
		if key := strings.ToLower(s.Name); !seen[key] {
			seen[key] = true
			specs = append(specs, spec)
		}
	}
	return specs, nil
}

// saveServices writes the service set to path, sorted by name, atomically
// (a temp file in the same directory, synced, then renamed over it), mode
// 0600.
func saveServices(path string, specs []dht.Spec) error {
	f := servicesFile{Version: servicesVersion, Services: make([]savedService, 0, len(specs))}
	for _, s := range specs {
		f.Services = append(f.Services, savedService{Name: s.Name, Meta: s.Meta, TTL: Duration(s.TTL)})
	}
	slices.SortFunc(f.Services, func(a, b savedService) int { return strings.Compare(key(a.Name), key(b.Name)) })
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("save services: %w", err)
	}
	if err := p2p.WriteFileAtomic(path, append(b, '\n')); err != nil {
		return fmt.Errorf("save services %s: %w", path, err)
	}
	return nil
}

// checkSpec validates a service as provide takes it, with the API error a
// bad one gets. A zero ttl is dht.DefaultTTL.
func checkSpec(name string, meta map[string]string, ttl Duration) (dht.Spec, *Error) {
	if err := record.ValidateName(name); err != nil {
		return dht.Spec{}, badRequest(CodeInvalidName, err.Error())
	}
	if err := record.ValidateMeta(meta); err != nil {
		return dht.Spec{}, badRequest(CodeInvalidMeta, err.Error())
	}
	d := time.Duration(ttl)
	if d == 0 {
		d = dht.DefaultTTL
	}
	if err := record.ValidateTTL(d); err != nil {
		return dht.Spec{}, badRequest(CodeInvalidTTL, err.Error())
	}
	if len(meta) == 0 {
		meta = nil
	}
	return dht.Spec{Name: name, Meta: meta, TTL: d}, nil
}

// badRequest is a 400 with code.
func badRequest(code, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Message: msg}
}

func key(name string) string { return strings.ToLower(name) }

// save writes services.json: the services the node provides, with extra
// in place of a service of the same name (case-insensitively) when set.
// It runs under s.opMu after every change to the set, so that the file
// ends up as what the node provides.
func (s *Server) save(extra *dht.Spec) *Error {
	var specs []dht.Spec
	for _, st := range s.node.Services() {
		if extra == nil || key(st.Name) != key(extra.Name) {
			specs = append(specs, dht.Spec{Name: st.Name, Meta: st.Meta, TTL: st.TTL})
		}
	}
	if extra != nil {
		specs = append(specs, *extra)
	}
	if err := saveServices(s.servicesPath(), specs); err != nil {
		return internal(err)
	}
	return nil
}

// resync saves the service set after a change, logging a failure: the
// change itself is done.
func (s *Server) resync() {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if e := s.save(nil); e != nil {
		s.log.Error("saving the service set", "err", e.Message)
	}
}
