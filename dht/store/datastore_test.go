package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	ds "github.com/ipfs/go-datastore"
	pebbleds "github.com/ipfs/go-ds-pebble"
)

// TestOpenWithRefusesBadOptions: a memtable outside 1 MiB to 1 GiB is
// refused with ErrBadDatastoreOptions, naming the size, before anything is
// created on disk.
func TestOpenWithRefusesBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bytes int64
		want  string
	}{
		{"negative", -1, "memtable of -1 bytes"},
		{"under 1 MiB", MinMemtableBytes - 1, fmt.Sprintf("memtable of %d bytes", MinMemtableBytes-1)},
		{"over 1 GiB", MaxMemtableBytes + 1, "want 1 MiB to 1024 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "datastore")
			d, err := OpenWith(dir, Options{MemtableBytes: tc.bytes})
			if err == nil {
				d.Close()
			}
			if !errors.Is(err, ErrBadDatastoreOptions) || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
				t.Fatalf("OpenWith: got %v, want ErrBadDatastoreOptions saying %q", err, tc.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("refused options left %s behind: %v", dir, err)
			}
		})
	}
}

// TestOpenWithMemtable: the memtable size reaches Pebble. The same 8 MiB of
// synced puts flush more memtables into tables with the smallest memtable
// than with the default one, and every value reads back from both.
func TestOpenWithMemtable(t *testing.T) {
	ctx := context.Background()
	value := bytes.Repeat([]byte{'v'}, 64<<10)
	flushes := func(o Options) int64 {
		t.Helper()
		d, err := OpenWith(t.TempDir(), o)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		const puts = 128 // 8 MiB
		for i := range puts {
			if err := d.Put(ctx, ds.NewKey(fmt.Sprint("/k/", i)), value); err != nil {
				t.Fatal(err)
			}
		}
		for i := range puts {
			got, err := d.Get(ctx, ds.NewKey(fmt.Sprint("/k/", i)))
			if err != nil || !bytes.Equal(got, value) {
				t.Fatalf("get %d: %d bytes, %v; want the %d put", i, len(got), err, len(value))
			}
		}
		return d.(*pebbleds.Datastore).DB.Metrics().Flush.Count
	}
	small, def := flushes(Options{MemtableBytes: MinMemtableBytes}), flushes(Options{})
	t.Logf("8 MiB of synced puts: %d flushes with a 1 MiB memtable, %d with the default", small, def)
	if small <= def {
		t.Fatalf("8 MiB of puts flushed %d memtables of 1 MiB and %d of the default %d MiB; want more of the small",
			small, def, DefaultMemtableBytes>>20)
	}
}
