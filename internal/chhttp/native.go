package chhttp

import (
	"bytes"
	"errors"
	"io"

	chproto "github.com/ClickHouse/ch-go/proto"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

// reencodeNative rewrites Native blocks written at protocol revision 0 as
// blocks of the given revision.
func reencodeNative(data []byte, revision uint64) ([]byte, error) {
	reader := chproto.NewReader(bytes.NewReader(data))
	var out chproto.Buffer
	for {
		var block proto.Block
		if err := block.Decode(reader, 0); err != nil {
			if errors.Is(err, io.EOF) {
				return out.Buf, nil
			}
			return nil, newErr(1001, "re-encode Native block: "+err.Error())
		}
		if err := block.Encode(&out, revision); err != nil {
			return nil, newErr(1001, "re-encode Native block: "+err.Error())
		}
	}
}
