package agent

// CloseStore closes the agent's store under it, as a failing disk would
// make it unusable, for the tests of Check.
func CloseStore(a *Agent) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.st.Close()
}
