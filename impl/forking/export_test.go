package forking

import "sync"

// HoldSpawns makes every child start wait at its beginning until release
// is called: a spawner is then inside its start for as long as a test
// needs. release returns once the starts it held have returned.
func HoldSpawns() (release func()) {
	gate := make(chan struct{})
	var mu sync.Mutex
	done := sync.NewCond(&mu)
	held := 0
	hook := func() func() {
		mu.Lock()
		held++
		mu.Unlock()
		<-gate
		return func() {
			mu.Lock()
			held--
			done.Broadcast()
			mu.Unlock()
		}
	}
	spawnHook.Store(&hook)
	return func() {
		spawnHook.Store(nil)
		close(gate)
		mu.Lock()
		for held > 0 {
			done.Wait()
		}
		mu.Unlock()
	}
}
