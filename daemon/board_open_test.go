package main

import (
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestOpenBoardIdlePowerOff: the board file's idlePowerOff reaches the daemon (which runs hal/idle
// with it); without it ports stay powered.
func TestOpenBoardIdlePowerOff(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "d.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		field string
		want  time.Duration
	}{{`"idlePowerOff":"7m",`, 7 * time.Minute}, {``, 0}} {
		file := filepath.Join(dir, "board.json")
		desc := `{"kind":"sim","applianceId":"E1",` + c.field + `"ports":[{"name":"SATA1","drive":{"path":"` + img + `","model":"M X","serial":"S1"}}]}`
		if err := os.WriteFile(file, []byte(desc), 0o644); err != nil {
			t.Fatal(err)
		}
		o := serveFlags(flag.NewFlagSet("t", flag.ContinueOnError))
		o.board, o.dataDir = file, dir
		ob, err := openBoard(o, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		ob.Close()
		if ob.idlePowerOff != c.want || ob.applianceID != "E1" {
			t.Errorf("%q: idle %v appliance %q, want %v E1", c.field, ob.idlePowerOff, ob.applianceID, c.want)
		}
	}
}
