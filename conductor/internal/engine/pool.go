package engine

import (
	"context"
	"sync"
	"time"
)

// pool runs the periodic per-node work (agent polls, power sync) on a fixed set of workers, each job under its
// own deadline, so that one slow BMC or silent agent holds up one worker for at most that deadline instead of the
// whole periodic loop. Jobs are keyed ("poll:<uuid>"): a key already queued or running is not queued again, so
// the queue holds at most one job per node and kind, and every node gets its turn in FIFO order (a bounded
// channel that drops when full would starve the same tail of the node list on every tick).
type pool struct {
	workers int
	base    context.Context // the context jobs derive from (the engine's work context)
	jobs    *sync.WaitGroup // counts queued and running jobs: Engine.Wait and shutdown wait on it
	once    sync.Once       // starts the workers on the first job

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []poolJob
	pending map[string]bool // queued or running
	closed  bool
}

// poolJob is one unit of periodic work.
type poolJob struct {
	key     string
	timeout time.Duration
	fn      func(ctx context.Context)
}

func newPool(workers int, base context.Context, jobs *sync.WaitGroup) *pool {
	p := &pool{workers: workers, base: base, jobs: jobs, pending: map[string]bool{}}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// submit queues fn under key unless a job of that key is queued or running; it reports whether it queued.
func (p *pool) submit(key string, timeout time.Duration, fn func(ctx context.Context)) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.pending[key] {
		return false
	}
	p.once.Do(p.start)
	p.jobs.Add(1)
	p.pending[key] = true
	p.queue = append(p.queue, poolJob{key: key, timeout: timeout, fn: fn})
	p.cond.Signal()
	return true
}

// depth is the number of jobs waiting for a worker (the worker-queue-depth metric).
func (p *pool) depth() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue)
}

// next blocks for a job; ok is false once the pool is closed (queued jobs are dropped then: they are periodic
// and the next conductor to own their nodes queues them again).
func (p *pool) next() (poolJob, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.queue) == 0 && !p.closed {
		p.cond.Wait()
	}
	if p.closed {
		return poolJob{}, false
	}
	j := p.queue[0]
	p.queue[0] = poolJob{} // let the closure be collected
	p.queue = p.queue[1:]
	return j, true
}

// done forgets a finished job's key.
func (p *pool) done(key string) {
	p.mu.Lock()
	delete(p.pending, key)
	p.mu.Unlock()
	p.jobs.Done()
}

// close stops the workers after their current job.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	for range p.queue {
		p.jobs.Done()
	}
	p.queue = nil
	p.cond.Broadcast()
	p.mu.Unlock()
}

// start runs the workers until close; each job gets a context from base bounded by its timeout.
func (p *pool) start() {
	for i := 0; i < p.workers; i++ {
		go func() {
			for {
				j, ok := p.next()
				if !ok {
					return
				}
				ctx, cancel := context.WithTimeout(p.base, j.timeout)
				j.fn(ctx)
				cancel()
				p.done(j.key)
			}
		}()
	}
}
