package testenv

import (
	"fmt"
	"time"
)

// NoHang crashes the process unless the returned stop is called within d. Fuzz targets defer it
// around one input: under `go test -fuzz` the engine then keeps an input on which a parser loops,
// as it keeps one on which it panics.
func NoHang(d time.Duration) (stop func() bool) {
	return time.AfterFunc(d, func() { panic(fmt.Sprintf("parser still running after %v on this input", d)) }).Stop
}
