module github.com/seawall-go/seawall/status/browsertest

go 1.26.0

require (
	github.com/chromedp/cdproto v0.159.0
	github.com/chromedp/chromedp v0.23.0
	github.com/seawall-go/seawall v0.0.0
)

require github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect

// Until the first release is tagged, browsertest builds against the
// seawall module two folders up; go.work does the same for development.
replace github.com/seawall-go/seawall => ../../
