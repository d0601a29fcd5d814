package publish

import "testing"

func TestTheResendPolicyIsValidForAnyOptions(t *testing.T) {
	for _, opts := range []Options{{}, {RetryFor: -1}, {RetryFor: 5e9}} {
		p := &Publisher{opts: withDefaults(opts)}
		if err := p.policy().Validate(); err != nil {
			t.Errorf("%+v: %v", opts, err)
		}
	}
}
