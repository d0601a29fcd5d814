package spool

import "testing"

func TestTheForwardingPolicyIsValidAndNeverGivesUp(t *testing.T) {
	if err := forwardPolicy.Validate(); err != nil {
		t.Fatal(err)
	}
	if forwardPolicy.GiveUpAfter != 0 {
		t.Errorf("the spool gives up after %s; an outage may last hours", forwardPolicy.GiveUpAfter)
	}
}
