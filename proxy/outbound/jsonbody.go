package outbound

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/qrphgate/qrphgate/proxy"
)

// maxRequestBody caps what the app may send; a create-QR body is ~150 bytes.
const maxRequestBody = 64 << 10

// readJSONBody checks the content type and size of the app's request.
func readJSONBody(w http.ResponseWriter, r *http.Request) ([]byte, *proxy.Error) {
	if !proxy.IsJSONMediaType(r.Header.Get("Content-Type")) {
		return nil, newErr(http.StatusUnsupportedMediaType, proxy.CodeUnsupportedMedia, "", "send Content-Type: application/json")
	}
	tooLarge := func() *proxy.Error {
		return newErr(http.StatusRequestEntityTooLarge, proxy.CodeBodyTooLarge, "", "request body exceeds "+strconv.Itoa(maxRequestBody)+" bytes")
	}
	if r.ContentLength > maxRequestBody {
		return nil, tooLarge()
	}
	b, err := proxy.ReadBody(w, r, maxRequestBody)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge()
		}
		return nil, clientClosed(err)
	}
	return b, nil
}
