package wsclient

import (
	"strconv"
	"strings"
)

// Vocabularies of the generated JSON: what a chat, a feed or an event stream
// carries (names, rooms, event types, words of text), so that it compresses
// the way such traffic does (about 3 to 5 times at flate.BestSpeed), neither
// like random bytes nor like one repeated string.
var (
	jsonUsers  = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yara"}
	jsonEvents = []string{"message", "join", "leave", "typing", "reaction", "edit", "presence", "read"}
	jsonRooms  = []string{"general", "random", "dev", "ops", "support", "sales", "design", "go", "release", "incidents"}
	jsonTags   = []string{"urgent", "question", "bug", "idea", "docs", "perf", "ui", "api", "infra", "meta"}
	jsonWords  = strings.Fields(`the a to of and in is it for on with that this be are was at as by from or not have
		we you they deploy server client socket message stream latency broadcast room queue retry timeout build
		release branch merge review test green red flaky cache memory goroutine handshake frame payload compress
		window buffer connection browser page reload user session token refresh ok thanks sure later today
		tomorrow meeting notes link see looks good done fixed pushed shipped rollback metrics graph alert`)
)

type rng struct{ x uint64 }

func (r *rng) next() uint64 {
	r.x ^= r.x << 13
	r.x ^= r.x >> 7
	r.x ^= r.x << 17
	return r.x
}

func (r *rng) n(k int) int { return int(r.next() % uint64(k)) }

// genJSON returns a JSON object of exactly size bytes (size ≥ 256): the
// head fields (textHead, zero), then "items", an array of generated event
// records, then "pad", spaces to the exact size. The same seed gives the
// same bytes.
func genJSON(size int, seed uint64) []byte {
	r := &rng{seed | 1}
	const tail = `],"pad":""}`
	b := make([]byte, 0, size)
	b = append(b, textHead...)
	b = append(b, `"items":[`...)
	var rec []byte
	for id := 0; ; id++ {
		rec = genRecord(rec[:0], r, id)
		sep := 0
		if id > 0 {
			sep = 1
		}
		if len(b)+sep+len(rec)+len(tail) > size {
			break
		}
		if sep == 1 {
			b = append(b, ',')
		}
		b = append(b, rec...)
	}
	b = append(b, `],"pad":"`...)
	for len(b) < size-2 {
		b = append(b, ' ')
	}
	return append(b, `"}`...)
}

func genRecord(b []byte, r *rng, id int) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, int64(100000+id*7+r.n(7)), 10)
	b = append(b, `,"type":"`...)
	b = append(b, jsonEvents[r.n(len(jsonEvents))]...)
	b = append(b, `","room":"`...)
	b = append(b, jsonRooms[r.n(len(jsonRooms))]...)
	b = append(b, `","user":{"name":"`...)
	b = append(b, jsonUsers[r.n(len(jsonUsers))]...)
	b = append(b, `","id":`...)
	b = strconv.AppendInt(b, int64(r.n(50000)), 10)
	b = append(b, `,"online":`...)
	b = strconv.AppendBool(b, r.n(3) > 0)
	b = append(b, `},"at":"2026-`...)
	b = appendPad2(b, 1+r.n(12))
	b = append(b, '-')
	b = appendPad2(b, 1+r.n(28))
	b = append(b, 'T')
	b = appendPad2(b, r.n(24))
	b = append(b, ':')
	b = appendPad2(b, r.n(60))
	b = append(b, ':')
	b = appendPad2(b, r.n(60))
	b = append(b, `.`...)
	b = strconv.AppendInt(b, int64(100+r.n(900)), 10)
	b = append(b, `Z","score":`...)
	b = strconv.AppendFloat(b, float64(r.n(100000))/100, 'f', 2, 64)
	b = append(b, `,"tags":[`...)
	for i, k := 0, r.n(3); i < k; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, jsonTags[r.n(len(jsonTags))]...)
		b = append(b, '"')
	}
	b = append(b, `],"text":"`...)
	for i, k := 0, 4+r.n(14); i < k; i++ {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, jsonWords[r.n(len(jsonWords))]...)
	}
	return append(b, `"}`...)
}

func appendPad2(b []byte, v int) []byte {
	if v < 10 {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, int64(v), 10)
}
