package console

import "github.com/shequ/shequ/hub/htmlpage"

// statsPages are the analysis pages and their layout.
var statsPages = map[string]string{}

// statsMessages are the analysis pages' messages.
var statsMessages = htmlpage.Messages{}

// registerStats adds the analysis pages.
func (c *Console) registerStats(Mux) {}
