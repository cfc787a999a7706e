package pyjson

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// decodeGeneric decodes JSON into generic values, keeping numbers as
// json.Number so integers round-trip exactly.
func decodeGeneric(data []byte, v *any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("pyjson: %w", err)
	}
	return nil
}
