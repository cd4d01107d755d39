// Package browsertest tests the status page (package
// github.com/seawall-go/seawall/status) in a real headless Chromium, driven
// by chromedp. It is a module of its own so that chromedp never enters the
// seawall module's requirements; it has no API.
//
// Run it with Chromium installed (apt-get install chromium), or with
// SEAWALL_CHROMIUM naming the browser:
//
//	go test github.com/seawall-go/seawall/status/browsertest
//
// The test skips when it finds no browser, unless SEAWALL_REQUIRE_BROWSER=1.
// SEAWALL_UPDATE_SCREENSHOT=1 rewrites docs/status.png from its screenshot.
package browsertest
