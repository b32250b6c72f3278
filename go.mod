module github.com/wesos/wesos

go 1.26

require (
	github.com/reugn/go-streams v0.12.0
	go.uber.org/goleak v1.3.0
)
