// Round trip of sample events through the generated models: each argument after -args is `<Title>=<path>`, a sample
// of the published schema titled Title. A sample must unmarshal into that schema's model and marshal back to the
// same JSON (compared as values, not bytes), so no field is lost, renamed or retyped by the models.
package contracts

import (
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"
)

// roundTrips unmarshals data into the model of one schema and marshals it back.
var roundTrips = map[string]func(data []byte) ([]byte, error){
	"AggregateEvent":        func(d []byte) ([]byte, error) { m, err := UnmarshalAggregateEvent(d); return marshal(&m, err) },
	"EffectCommand":         func(d []byte) ([]byte, error) { m, err := UnmarshalEffectCommand(d); return marshal(&m, err) },
	"EffectResult":          func(d []byte) ([]byte, error) { m, err := UnmarshalEffectResult(d); return marshal(&m, err) },
	"GatewayCommand":        func(d []byte) ([]byte, error) { m, err := UnmarshalGatewayCommand(d); return marshal(&m, err) },
	"PackApprovalRequested": func(d []byte) ([]byte, error) { m, err := UnmarshalPackApprovalRequested(d); return marshal(&m, err) },
	"PackApprovalUpdated":   func(d []byte) ([]byte, error) { m, err := UnmarshalPackApprovalUpdated(d); return marshal(&m, err) },
}

func marshal(model interface{ Marshal() ([]byte, error) }, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	return model.Marshal()
}

func decode(t *testing.T, data []byte) interface{} {
	t.Helper()
	var value interface{}
	if err := json.Unmarshal(data, &value); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	return value
}

func TestRoundTrip(t *testing.T) {
	if len(flag.Args()) == 0 {
		t.Fatal("no samples: pass <Title>=<path> arguments after -args")
	}
	for _, arg := range flag.Args() {
		title, path, ok := strings.Cut(arg, "=")
		roundTrip := roundTrips[title]
		if !ok || roundTrip == nil {
			t.Fatalf("%q is not <Title>=<path> of a published schema", arg)
		}
		t.Run(title+"="+path, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			out, err := roundTrip(data)
			if err != nil {
				t.Fatalf("round trip: %v", err)
			}
			if want, got := decode(t, data), decode(t, out); !reflect.DeepEqual(want, got) {
				t.Fatalf("marshalled back differently:\nwant %v\ngot  %v", want, got)
			}
		})
	}
}
