package sigv4

import "testing"

func TestPayloadModes(t *testing.T) {
	cases := []struct {
		mode                                   PayloadMode
		valid, streaming, signedChunks, isHash bool
	}{
		{UnsignedPayload, true, false, false, false},
		{StreamingPayload, true, true, true, false},
		{StreamingPayloadTrailer, true, true, true, false},
		{StreamingUnsignedTrailer, true, true, false, false},
		{EmptySHA256, true, false, false, true},
		{"STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", false, false, false, true},
		{"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", false, false, false, true},
		{"", false, false, false, true},
	}
	for _, c := range cases {
		if c.mode.Valid() != c.valid || c.mode.Streaming() != c.streaming || c.mode.SignedChunks() != c.signedChunks || c.mode.IsHash() != c.isHash {
			t.Errorf("%q: valid %v, streaming %v, signed chunks %v, hash %v", c.mode, c.mode.Valid(), c.mode.Streaming(), c.mode.SignedChunks(), c.mode.IsHash())
		}
	}
}
