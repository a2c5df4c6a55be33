package forking

import "sync"

// HoldSpawns makes every child start wait at its beginning until release
// is called: a spawner is then inside its start for as long as a test
// needs. release returns once the starts it held have returned; held
// counts the starts under way.
func HoldSpawns() (release func(), held func() int) {
	gate := make(chan struct{})
	var mu sync.Mutex
	done := sync.NewCond(&mu)
	n := 0
	hook := func() func() {
		mu.Lock()
		n++
		mu.Unlock()
		<-gate
		return func() {
			mu.Lock()
			n--
			done.Broadcast()
			mu.Unlock()
		}
	}
	spawnHook.Store(&hook)
	release = func() {
		spawnHook.Store(nil)
		close(gate)
		mu.Lock()
		for n > 0 {
			done.Wait()
		}
		mu.Unlock()
	}
	held = func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
	return release, held
}

// Waiting returns how many connections wait in the pool for a child.
func (s *Server) Waiting() int {
	s.pool.mu.Lock()
	defer s.pool.mu.Unlock()
	return s.pool.waiting
}
