// Package flow holds the operators that wesos pipelines are built from: each
// one wraps a wesos.Source and returns another, the way middleware wraps an
// http.Handler.
//
//	src := wesos.FromSlice(1, 2, 3, 4)
//	even := flow.Filter(src, func(v int) bool { return v%2 == 0 })
//	out, err := wesos.Collect(ctx, flow.Map(even, double)) // [4 8]
//
// # Synchronous operators
//
// Map, Filter, Take, FlatMap, Scan, Reduce, Batch, TumblingWindow, Throttle
// and Recover run in the caller's goroutine: each call to Next calls Next on the
// wrapped Source with the same ctx, starts no goroutine and allocates nothing
// per value of its own (a batch is one new slice, and a deadline). Like every Source, their results are not safe for
// concurrent use. An error from the wrapped Source or from a user function is
// returned by Next, and ends that call only: calling Next again asks the
// wrapped Source again (except after io.EOF, which is final).
//
// # Errors of one value
//
// A value that fails (a function of Map or FlatMap returns an error, a
// ws.Typed cannot decode a message) is an error of that value, not of the
// stream: it is Recoverable. Recover wraps a Source and hands such errors to
// an ErrorPolicy, which drops the value (SkipValue), answers it (ReplyError)
// or ends the stream with an error of the caller's choosing (EndWith):
//
//	good := flow.Recover(numbers, flow.ReplyError(replies, func(err error) string {
//		return "error: " + err.Error()
//	}))
//
// Without Recover the error reaches the consumer, and wesos.Pipe stops there.
//
// Batch, TumblingWindow and Throttle need time as well as values. Batch and
// TumblingWindow bound their wait by calling the wrapped Source's Next with a
// ctx that has a deadline, so they rely on the wesos contract that a cancelled
// or expired ctx ends the call, not the stream: a Source that ends itself when
// a ctx expires loses its stream at the first partial batch.
//
// # Concurrent operators
//
// Merge (fan-in) and Hub (fan-out) exist because their work is concurrent;
// they own goroutines and say in their documentation how those end.
//
// Merge never reads ahead: each input hands one value over and waits until
// the consumer asks for the next one before calling its own Next again, so a
// value that is valid only until its Source's next Next (a ws.Message body)
// stays valid while the consumer holds it.
//
// A Hub is a Sink that copies each value to every subscribed Sink. Each
// subscriber has its own bounded queue served by its own goroutine, so a slow
// subscriber never stalls the publisher or the others. What happens when a
// subscriber's queue is full is the Hub's Policy:
//
//	Policy          when a subscriber's queue is full
//	DropSubscriber  the subscriber is removed with ErrSlowSubscriber (the default)
//	DropValue       the value is dropped for that subscriber only, which stays;
//	                Subscription.Dropped counts the values it missed
//	Block           Send waits up to HubOptions.BlockTimeout for room, then removes
//	                the subscriber with ErrSlowSubscriber
//
// A subscriber whose Sink returns an error from Send is removed as well. A
// Sink learns why the Hub removed it if it implements ErrorCloser; its
// Subscription's Done and Err say so in every case.
package flow
