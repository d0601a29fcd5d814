package agent

import "testing"

func TestTheDialPolicyIsValidAndNeverGivesUp(t *testing.T) {
	if err := dialPolicy.Validate(); err != nil {
		t.Fatal(err)
	}
	if dialPolicy.GiveUpAfter != 0 {
		t.Errorf("the agent stops dialling after %s; an office may start its day without a link", dialPolicy.GiveUpAfter)
	}
}
