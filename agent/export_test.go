package agent

// CloseStore closes the agent's store under it, as a failing disk would
// make it unusable, for the tests of Check.
func CloseStore(a *Agent) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.st.Close()
}

// Subscribers returns how many event streams are open.
func Subscribers(a *Agent) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.subs)
}
