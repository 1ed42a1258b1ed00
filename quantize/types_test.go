package quantize

import (
	"strings"
	"testing"
)

func TestTypeTable(t *testing.T) {
	for _, tc := range []struct {
		typ   Type
		name  string
		id    int32
		block int
		row   int // bytes for a 320-element row
		bpw   float64
	}{
		{F32, "f32", 0, 1, 1280, 32},
		{F16, "f16", 1, 1, 640, 16},
		{BF16, "bf16", 30, 1, 640, 16},
		{Q8_0, "q8_0", 8, 32, 340, 8.5},
		{Q5_1, "q5_1", 7, 32, 240, 6},
		{Q5_0, "q5_0", 6, 32, 220, 5.5},
		{Q4_1, "q4_1", 3, 32, 200, 5},
		{Q4_0, "q4_0", 2, 32, 180, 4.5},
	} {
		if tc.typ.String() != tc.name || int32(tc.typ) != tc.id || tc.typ.BlockSize() != tc.block {
			t.Errorf("%v: name %q id %d block %d", tc.typ, tc.typ.String(), int32(tc.typ), tc.typ.BlockSize())
		}
		if got, err := tc.typ.RowBytes(320); err != nil || got != tc.row {
			t.Errorf("%v: RowBytes(320) = %d, %v; want %d", tc.typ, got, err, tc.row)
		}
		if tc.typ.BitsPerWeight() != tc.bpw {
			t.Errorf("%v: %v bits per weight, want %v", tc.typ, tc.typ.BitsPerWeight(), tc.bpw)
		}
		got, err := ParseType(strings.ToUpper(tc.name))
		if err != nil || got != tc.typ {
			t.Errorf("ParseType(%q) = %v, %v", strings.ToUpper(tc.name), got, err)
		}
	}
}

func TestTypesOrderedBySize(t *testing.T) {
	list := Types()
	if len(list) != 8 || list[0] != F32 || list[len(list)-1] != Q4_0 {
		t.Fatalf("Types() = %v", list)
	}
	for i := 1; i < len(list); i++ {
		if list[i].BitsPerWeight() > list[i-1].BitsPerWeight() {
			t.Fatalf("Types() not ordered: %v", list)
		}
	}
}

func TestBadInput(t *testing.T) {
	if _, err := ParseType("q3_x"); err == nil || !strings.Contains(err.Error(), "q4_0") {
		t.Fatalf("ParseType(q3_x) error %v should list the known types", err)
	}
	if _, err := Q4_0.RowBytes(33); err == nil {
		t.Fatal("RowBytes(33) for q4_0 should fail")
	}
	if _, err := Type(99).RowBytes(32); err == nil {
		t.Fatal("RowBytes on an unknown type should fail")
	}
	if Type(99).String() != "type(99)" {
		t.Fatalf("unknown type prints %q", Type(99).String())
	}
}
