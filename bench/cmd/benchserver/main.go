// Command benchserver runs one library's echo or broadcast server, for
// benchload to measure from another process.
//
//	benchserver -lib wesos -mode echo -addr 127.0.0.1:9001 -debug 127.0.0.1:9101
//
// -debug serves GET /debug (runtime.MemStats HeapInuse, StackInuse and
// runtime.NumGoroutine as JSON; ?gc=1 runs a collection first) and
// /debug/pprof/. -cpuprofile writes a CPU profile from start until SIGINT or
// SIGTERM.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof" // on the debug listener only (DefaultServeMux)
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"

	"github.com/wesos/wesos/bench/servers"
)

func main() {
	lib := flag.String("lib", "wesos", fmt.Sprintf("library: %v", servers.Names()))
	mode := flag.String("mode", "echo", "echo or broadcast")
	addr := flag.String("addr", "127.0.0.1:9001", "listen address (loopback only)")
	debugAddr := flag.String("debug", "", "address of the /debug endpoint (empty: none)")
	readLimit := flag.Int64("readlimit", 64<<20, "largest message accepted, bytes")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file until SIGINT/SIGTERM")
	compress := flag.Bool("compress", false, "negotiate permessage-deflate (no context takeover) when the client offers it")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("benchserver " + *lib + "/" + *mode + ": ")

	raiseNoFile()

	host, _, err := net.SplitHostPort(*addr)
	if err != nil || (host != "127.0.0.1" && host != "localhost") {
		log.Fatalf("-addr must be on 127.0.0.1, got %q", *addr)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}

	if *debugAddr != "" {
		http.HandleFunc("/debug", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("gc") == "1" {
				runtime.GC()
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			json.NewEncoder(w).Encode(map[string]uint64{
				"heap_inuse":  ms.HeapInuse,
				"stack_inuse": ms.StackInuse,
				"heap_alloc":  ms.HeapAlloc,
				"sys":         ms.Sys,
				"num_gc":      uint64(ms.NumGC),
				"goroutines":  uint64(runtime.NumGoroutine()),
			})
		})
		dl, err := net.Listen("tcp", *debugAddr)
		if err != nil {
			log.Fatal(err)
		}
		go http.Serve(dl, nil)
	}

	stop := func() {}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		stop = func() { pprof.StopCPUProfile(); f.Close() }
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		stop()
		os.Exit(0)
	}()

	err = servers.Serve(*lib, ln, servers.Config{Mode: *mode, ReadLimit: *readLimit, Compress: *compress})
	stop()
	log.Fatal(err)
}

// raiseNoFile lifts the soft open-file limit to the hard one.
func raiseNoFile() {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < rl.Max {
		rl.Cur = rl.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
}
