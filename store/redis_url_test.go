package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/qrphgate/qrphgate/internal/redistest"
	"github.com/qrphgate/qrphgate/internal/testenv"

	"github.com/qrphgate/qrphgate/store"
)

func TestParseRedisURL(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want string // RedisTarget.String
		tls  bool
		auth bool
	}{
		{"redis://127.0.0.1:6379/0", "redis 127.0.0.1:6379/0", false, false},
		{"rediss://:FAKE-pw@redis.internal:6380/2", "redis redis.internal:6380/2", true, false},
		{"redis-cluster://10.0.0.1:6379,10.0.0.2:6379,10.0.0.3:6379", "redis-cluster 10.0.0.1:6379,10.0.0.2:6379,10.0.0.3:6379", false, false},
		{"redis-cluster://:FAKE-pw@10.0.0.1:6379,10.0.0.2:6379/?tls=true", "redis-cluster 10.0.0.1:6379,10.0.0.2:6379", true, false},
		{"rediss-cluster://app:FAKE%2Fpw%40x@node-1.cache.internal:6379/", "redis-cluster node-1.cache.internal:6379", true, false},
		{"redis-cluster://[::1]:7000,[::1]:7001", "redis-cluster [::1]:7000,[::1]:7001", false, false},
		{"redis-sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster", "redis-sentinel mymaster@10.0.0.1:26379,10.0.0.2:26379/0", false, false},
		{"redis-sentinel://:FAKE-pw@s1:26379,s2:26379,s3:26379/mymaster/3", "redis-sentinel mymaster@s1:26379,s2:26379,s3:26379/3", false, false},
		{"rediss-sentinel://:FAKE-pw@s1:26379/mymaster/0?sentinel_auth=true", "redis-sentinel mymaster@s1:26379/0", true, true},
		{"redis-sentinel://s1:26379/mymaster?tls=true", "redis-sentinel mymaster@s1:26379/0", true, false},
		{"redis-cluster://a:1,b:2/?key_prefix=qrphgate-sandbox:&tls=true", "redis-cluster a:1,b:2", true, false},
		{"redis://127.0.0.1:6379/1?key_prefix=staging:", "redis 127.0.0.1:6379/1", false, false},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			got, err := store.ParseRedisURL(tc.raw)
			if err != nil {
				t.Fatalf("ParseRedisURL: %v", err)
			}
			if got.String() != tc.want || got.TLS != tc.tls || got.SentinelAuth != tc.auth {
				t.Fatalf("got %s tls=%v auth=%v, want %s tls=%v auth=%v", got, got.TLS, got.SentinelAuth, tc.want, tc.tls, tc.auth)
			}
			if strings.Contains(fmt.Sprintf("%+v %s", got, got), "FAKE") {
				t.Fatalf("the target shows the password: %+v", got)
			}
		})
	}
}

// Bad URLs get an error that names the problem and never the password.
func TestParseRedisURLRejects(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{"memory", "want redis://"},
		{"http://127.0.0.1:6379", "want redis://"},
		{"redis://", "want redis://"},
		{"redis://:FAKE-pw@127.0.0.1:6379/notanumber", "must be a number"},
		{"redis://:FAKE-pw@127.0.0.1:6379/0?bogus=1", "invalid redis URL"},
		{"redis-cluster://", "host:port"},
		{"redis-cluster://:FAKE-pw@10.0.0.1", "host:port"},
		{"redis-cluster://:FAKE-pw@10.0.0.1:6379,", "host:port"},
		{"redis-cluster://:FAKE-pw@10.0.0.1:0", "port between"},
		{"redis-cluster://:FAKE-pw@10.0.0.1:99999", "port between"},
		{"redis-cluster://:FAKE-pw@10.0.0.1:6379/2", "no path"},
		{"redis-cluster://:FAKE-pw@10.0.0.1:6379/?tls=maybe", "true or false"},
		{"redis-cluster://:FAKE-pw@10.0.0.1:6379/?skip_verify=true", "unknown Redis URL option"},
		{"redis-cluster://:FAKE-pw@10.0.0.1:6379/?sentinel_auth=true", "unknown Redis URL option"},
		{"redis-cluster://:FAKE%zzpw@10.0.0.1:6379", "percent-escaped"},
		{"redis-sentinel://:FAKE-pw@s1:26379", "names the primary"},
		{"redis-sentinel://:FAKE-pw@s1:26379/", "names the primary"},
		{"redis-sentinel://:FAKE-pw@s1:26379/mymaster/x", "must be a number"},
		{"redis-sentinel://:FAKE-pw@s1:26379/mymaster/-1", "must be a number"},
		{"redis-sentinel://:FAKE-pw@s1:26379/mymaster/0/extra", "must be a number"},
		{"redis-sentinel://:FAKE-pw@s1:26379/mymaster?sentinel_auth=yes%", "malformed"},
		{"redis-cluster://:FAKE-pw@a:1/?key_prefix=", "key_prefix must be"},
		{"redis-cluster://:FAKE-pw@a:1/?key_prefix={tag}", "key_prefix must be"},
		{"redis://:FAKE-pw@a:1/0?key_prefix=has%20space", "key_prefix must be"},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			_, err := store.ParseRedisURL(tc.raw)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "FAKE") {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	for raw, want := range map[string]string{
		"rediss://user:FAKE-pw@redis.internal:6380/2":         "rediss://user:xxxxx@redis.internal:6380/2",
		"redis-cluster://:FAKE-pw@a:1,b:2/?tls=true":          "redis-cluster://:xxxxx@a:1,b:2/?tls=true",
		"redis-sentinel://:FAKE@pw@s1:26379,s2:26379/m/0":     "redis-sentinel://:xxxxx@s1:26379,s2:26379/m/0",
		"redis-sentinel://s1:26379/m":                         "redis-sentinel://s1:26379/m",
		"nonsense://:FAKE-pw@x":                               "redis://[unparseable]",
		"rediss-sentinel://app:FAKE%40pw@s1:26379/mymaster/1": "rediss-sentinel://app:xxxxx@s1:26379/mymaster/1",
	} {
		if got := store.RedactURL(raw); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", raw, got, want)
		}
	}
}

// FuzzParseRedisURL: no input panics the parser, and neither its errors
// nor a parsed target's description repeat the password.
func FuzzParseRedisURL(f *testing.F) {
	for _, seed := range []string{
		"redis://:FAKEPW@127.0.0.1:6379/0",
		"redis-cluster://:FAKEPW@a:1,b:2/?tls=true",
		"rediss-sentinel://u:FAKEPW@s1:26379,s2:26379/m/3?sentinel_auth=true",
		"redis-sentinel://:FAKEPW@[::1]:26379/m",
		"redis-cluster://:FAKEPW@@a:1",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		const pw = "FAKEPW"
		if strings.Count(raw, pw) != 1 || !strings.Contains(raw, ":"+pw+"@") {
			return // the check below needs a password in its place
		}
		target, err := store.ParseRedisURL(raw)
		if err != nil {
			if strings.Contains(err.Error(), pw) {
				t.Fatalf("the error shows the password: %v", err)
			}
			return
		}
		if strings.Contains(target.String(), pw) {
			t.Fatalf("the target shows the password: %s", target)
		}
		if strings.Contains(store.RedactURL(raw), pw) {
			t.Fatalf("RedactURL shows the password: %s", store.RedactURL(raw))
		}
	})
}

// key_prefix is every form's option, and the store's keys live under it.
func TestRedisURLKeyPrefix(t *testing.T) {
	for raw, want := range map[string]string{
		"redis://127.0.0.1:6379/0":                               "",
		"redis://127.0.0.1:6379/0?key_prefix=staging:":           "staging:",
		"rediss://127.0.0.1:6379/0?dial_timeout=3&key_prefix=p:": "p:",
		"redis-cluster://a:1/?key_prefix=sbx.qrphgate:":          "sbx.qrphgate:",
		"redis-sentinel://s:1/m/2?tls=true&key_prefix=prod-":     "prod-",
	} {
		got, err := store.ParseRedisURL(raw)
		if err != nil || got.KeyPrefix != want {
			t.Errorf("%s: key prefix %q, %v; want %q", raw, got.KeyPrefix, err, want)
		}
	}
	prefix := testPrefix()
	r, err := store.OpenRedis(context.Background(), testRedisURL+"?key_prefix="+prefix, store.RedisOptions{})
	if err != nil {
		testenv.Missing(t, "redis on 127.0.0.1:6379: %v", err)
	}
	t.Cleanup(func() { _ = r.Close(); redistest.DropKeys(t, prefix) })
	if _, err := r.Take(context.Background(), "acct", 10, time.Minute); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer c.Close()
	if n, err := c.Exists(context.Background(), prefix+"budget:acct").Result(); err != nil || n != 1 {
		t.Fatalf("the window is not under the URL's key_prefix: %d %v", n, err)
	}
}
