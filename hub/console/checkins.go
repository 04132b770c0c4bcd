package console

import "github.com/shequ/shequ/hub/htmlpage"

// checkinPages are the check-in overview pages and their layout.
var checkinPages = map[string]string{}

// checkinMessages are the check-in overview's messages.
var checkinMessages = htmlpage.Messages{}

// registerCheckins adds the check-in overview.
func (c *Console) registerCheckins(Mux) {}
