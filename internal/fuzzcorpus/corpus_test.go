package fuzzcorpus

import (
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	data := "go test fuzz v1\nstring(\"API.EXAMPLE.COM\")\n[]byte(\"\\x00\\xff\")\nint64(-3600)\nbool(true)\nbyte('\\x01')\nrune('é')\n"
	got, err := Parse([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := []any{"API.EXAMPLE.COM", []byte{0, 0xff}, int64(-3600), true, byte(1), 'é'}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse = %#v, want %#v", got, want)
	}
	for _, bad := range []string{"", "go test fuzz v2\n", "go test fuzz v1\nstring(x)\n", "go test fuzz v1\nfloat64(1)\n"} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) accepted it", bad)
		}
	}
}
