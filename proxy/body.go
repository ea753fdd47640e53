package proxy

import (
	"io"
	"net/http"
)

// ReadBody reads at most limit bytes; a longer body yields
// *http.MaxBytesError and the server closes the connection rather than
// reading the rest.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	return ReadAllSized(http.MaxBytesReader(w, r.Body, limit), r.ContentLength, limit)
}

// ReadAllSized reads rd to the end like io.ReadAll, but starts from a buffer
// of the declared length (a Content-Length) so a body of the size it
// announces is read without regrowing. The declared length is the peer's
// word: it counts only within limit, so a huge one allocates nothing.
func ReadAllSized(rd io.Reader, declared, limit int64) ([]byte, error) {
	size := 512
	if declared > 0 && declared <= limit {
		size = int(declared) + 1 // room for the read that returns io.EOF
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
