// Package gostreams converts between wesos Sources and Sinks and the
// channel-based stages of github.com/reugn/go-streams, so that go-streams'
// windowing and other operators run on wesos streams (WebSocket connections
// among them). It is the one package of the core module that imports
// go-streams.
//
// Group the text messages of a connection by second of arrival (go-streams'
// operators are in a package named flow, like wesos's own: import it as
// streams "github.com/reugn/go-streams/flow"):
//
//	in := gostreams.Source(ctx, texts)             // wesos.Source[string] → go-streams
//	windows := in.Via(streams.NewTumblingWindow[string](time.Second))
//	out := gostreams.FromOutlet[[]string](windows) // go-streams → wesos.Source[[]string]
//	err := wesos.Pipe(ctx, perSecond, out)         // on an error: cancel ctx, then out.Drain()
//	err = errors.Join(err, in.Err())               // go-streams has no error channel
//
// The four conversions (streams.Source, Sink, Outlet and Inlet are the
// interfaces of the root package github.com/reugn/go-streams):
//
//	Source     wesos.Source[T] → streams.Source  (*SourceAdapter[T]; a goroutine pulls Next)
//	Sink       wesos.Sink[T]   → streams.Sink    (*SinkAdapter[T];  a goroutine calls Send)
//	FromOutlet streams.Outlet  → wesos.Source[T] (*OutletSource[T]; no goroutine)
//	ToInlet    streams.Inlet   → wesos.Sink[T]   (*InletSink[T];    no goroutine)
//
// # Goroutines and their owners
//
// go-streams moves values over unbuffered chan any, and each of its stages
// runs goroutines that stop only when their input channel is closed and
// their last value has been taken from their output channel. The rules that
// follow from it:
//
//   - Every chain must end in a reader that reads to the end. An
//     OutletSource whose consumer gives up early (ctx ended, an error) must
//     be drained with OutletSource.Drain; a SinkAdapter keeps reading (and
//     discarding) after its first error for the same reason.
//   - Every chain must start with a writer that closes its channel. The
//     SourceAdapter closes its output at the end of its Source, on an error,
//     or when its ctx ends; an InletSink is closed with InletSink.Close.
//
// Cancelling the ctx given to Source therefore stops the whole chain, as
// long as its far end is drained.
//
// # Values cross goroutines
//
// The SourceAdapter pulls the next value from its wesos Source as soon as
// the previous one has been handed to go-streams, while downstream stages
// may still hold it. A value that stays valid only until the next Next (the
// body of a ws.Message) must be made self-contained, for example read into
// a []byte, before it enters go-streams.
//
// go-streams has no error channel and its stages panic on a value of the
// wrong type. The adapters here never panic on one: they report it as an
// error matching ErrType, and they report the errors of the wesos side
// through Err methods.
package gostreams
