package state

import "sync/atomic"

// Budget is a byte budget shared by state stores: the share of
// sluice.memory.budget the engine gives to state. Memory-provider stores
// charge the measured size of their live version to it as they grow (and
// release it as they shrink or close); disk-provider stores charge their
// fixed memtable and block-cache allowance when opened. A put that would
// pass the limit fails with *MemoryExceededError and changes nothing.
//
// A nil *Budget is valid and unlimited. Budget is safe for concurrent use.
type Budget struct {
	limit int64
	used  atomic.Int64
}

// NewBudget returns a budget of limit bytes (≤ 0: unlimited, still counted).
func NewBudget(limit int64) *Budget { return &Budget{limit: limit} }

// Limit is the budget's limit (≤ 0: unlimited).
func (b *Budget) Limit() int64 {
	if b == nil {
		return 0
	}
	return b.limit
}

// Used is the bytes charged now.
func (b *Budget) Used() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

// tryCharge adds n bytes if the result stays within the limit (n ≤ 0 always
// succeeds). It returns the total after (or the total it would have been).
func (b *Budget) tryCharge(n int64) (int64, bool) {
	if b == nil {
		return 0, true
	}
	for {
		cur := b.used.Load()
		next := cur + n
		if n > 0 && b.limit > 0 && next > b.limit {
			return next, false
		}
		if b.used.CompareAndSwap(cur, next) {
			return next, true
		}
	}
}

func (b *Budget) release(n int64) {
	if b != nil && n != 0 {
		b.used.Add(-n)
	}
}

// charger tracks one store's charge against its own limit and the budget.
type charger struct {
	id      ID
	limit   int64 // per-store limit, ≤ 0 none
	budget  *Budget
	charged int64 // bytes currently charged to budget by this store
}

// resize moves the store's charge to size bytes, or fails without change.
func (c *charger) resize(size int64) error {
	if size > c.charged && c.limit > 0 && size > c.limit {
		return &MemoryExceededError{Operator: c.id.Operator, Partition: c.id.Partition, StoreBytes: size, Limit: c.limit}
	}
	delta := size - c.charged
	if total, ok := c.budget.tryCharge(delta); !ok {
		return &MemoryExceededError{Operator: c.id.Operator, Partition: c.id.Partition, StoreBytes: size,
			Used: total, Limit: c.budget.Limit(), Budget: true}
	}
	c.charged = size
	return nil
}

// force sets the charge without checking (shrinking, or restoring a state
// that was already admitted).
func (c *charger) force(size int64) {
	c.budget.tryChargeForce(size - c.charged)
	c.charged = size
}

func (b *Budget) tryChargeForce(n int64) {
	if b != nil {
		b.used.Add(n)
	}
}
