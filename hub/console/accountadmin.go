package console

import "github.com/shequ/shequ/hub/htmlpage"

// accountPages are the account pages and their layout.
var accountPages = map[string]string{}

// accountMessages are the account pages' messages.
var accountMessages = htmlpage.Messages{}

// registerAccounts adds the account pages.
func (c *Console) registerAccounts(Mux) {}
