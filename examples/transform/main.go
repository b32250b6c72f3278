// Command transform is a data-transformation server built from flows: a
// client sends sensor readings as JSON, one per message, and gets back the
// plausible ones, converted and labelled, as JSON.
//
//	go run ./examples/transform        # ws://localhost:8081
//	echo '{"sensor":"kitchen","celsius":21.5}' | go run ./examples/client -url ws://localhost:8081
//
//	in:  {"sensor":"kitchen","celsius":21.5}
//	out: {"sensor":"kitchen","celsius":21.5,"fahrenheit":70.7,"level":"normal"}
package main

import (
	"context"
	"flag"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/flow"
	"github.com/wesos/wesos/ws"
)

// Reading is what a client sends.
type Reading struct {
	Sensor  string  `json:"sensor"`
	Celsius float64 `json:"celsius"`
}

// Report is what it gets back.
type Report struct {
	Sensor     string  `json:"sensor"`
	Celsius    float64 `json:"celsius"`
	Fahrenheit float64 `json:"fahrenheit"`
	Level      string  `json:"level"` // "cold", "normal" or "hot"
}

// pipeline is the whole transformation, a flow from readings to reports.
func pipeline(readings wesos.Source[Reading]) wesos.Source[Report] {
	// Filter: drop what no sensor can have measured (no name, or outside
	// -50…100 °C); a glitch is not worth a report.
	plausible := flow.Filter(readings, func(r Reading) bool {
		return r.Sensor != "" && r.Celsius >= -50 && r.Celsius <= 100
	})
	// Map: convert to Fahrenheit and label the temperature.
	reports := flow.Map(plausible, func(_ context.Context, r Reading) (Report, error) {
		level := "normal"
		switch {
		case r.Celsius < 10:
			level = "cold"
		case r.Celsius > 30:
			level = "hot"
		}
		f := math.Round((r.Celsius*9/5+32)*10) / 10
		return Report{Sensor: r.Sensor, Celsius: r.Celsius, Fahrenheit: f, Level: level}, nil
	})
	// Throttle: at most 100 reports a second per connection. A faster sender
	// is held back (the server stops reading, TCP pushes back), not dropped.
	return flow.Throttle(reports, 10, 100*time.Millisecond)
}

// newTransform returns the server: each connection's readings (decoded
// from JSON) go through the pipeline, and its reports go back as JSON.
func newTransform() *ws.Server {
	return ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
		// A message that is not a Reading ends the pipeline with a
		// *ws.DecodeError, which closes the connection with 1007.
		return wesos.Pipe(ctx, ws.JSON[Report](c), pipeline(ws.JSON[Reading](c)))
	}, &ws.AcceptOptions{ReadLimit: 64 << 10})
}

func main() {
	addr := flag.String("addr", "localhost:8081", "address to listen on")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		slog.Error("transform server", "err", err)
		os.Exit(1)
	}
	slog.Info("transform server listening", "url", "ws://"+ln.Addr().String())
	if err := ws.Serve(ctx, ws.HTTPServer(newTransform()), ln); err != nil {
		slog.Error("transform server", "err", err)
		os.Exit(1)
	}
	slog.Info("transform server stopped")
}
