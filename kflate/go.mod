module github.com/wesos/wesos/kflate

go 1.26.0

require (
	github.com/klauspost/compress v1.20.3
	github.com/wesos/wesos v0.0.0
	go.uber.org/goleak v1.3.0
)

replace github.com/wesos/wesos => ../
