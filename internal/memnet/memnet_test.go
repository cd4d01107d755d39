package memnet

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHTTPInBubble serves HTTP/1 and h2c over a Listener inside a synctest
// bubble, and checks that Close ends Accept and Dial.
func TestHTTPInBubble(t *testing.T) {
	for _, h2c := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			ln := Listen()
			var protocols http.Protocols
			protocols.SetHTTP1(!h2c)
			protocols.SetUnencryptedHTTP2(h2c)
			srv := &http.Server{Protocols: &protocols, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, r.Proto)
			})}
			go srv.Serve(ln)
			client := &http.Client{Transport: &http.Transport{Protocols: &protocols, DialContext: ln.Dial}}
			resp, err := client.Get("http://memnet/")
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.True(t, strings.HasPrefix(string(body), map[bool]string{false: "HTTP/1", true: "HTTP/2"}[h2c]), string(body))

			client.CloseIdleConnections()
			require.NoError(t, srv.Close())
			_, err = ln.Accept()
			assert.ErrorIs(t, err, ErrClosed)
			_, err = ln.Dial(context.Background(), "", "")
			assert.ErrorIs(t, err, ErrClosed)
			synctest.Wait()
		})
	}
}

// TestDialHonoursContext: a Dial nobody accepts returns when ctx ends.
func TestDialHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := Listen()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := ln.Dial(ctx, "", "")
		assert.ErrorIs(t, err, context.Canceled)
	})
}
