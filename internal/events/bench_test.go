package events

import "testing"

// BenchmarkDecode is the aggregator's per-message validation of a valid event.
func BenchmarkDecode(b *testing.B) {
	v := validator(b)
	data := []byte(exampleEvent)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}
