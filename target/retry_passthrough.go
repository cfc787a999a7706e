package target

// wrappingTarget is what NewRetry and NewLimit build: a Target that knows the
// target it wraps.
type wrappingTarget interface {
	Target
	Wrapper
}

// passThrough returns d with the optional interfaces of the target it wraps
// (LayoutTarget, Closer) added, each only when the inner target has it, so a
// type assertion on a decorated target answers as it would on the bare one.
func passThrough(d wrappingTarget) Target {
	inner := d.Unwrap()
	lt, isLayout := inner.(LayoutTarget)
	c, isCloser := inner.(Closer)
	switch {
	case isLayout && isCloser:
		return layoutCloserDecorator{d, lt, c}
	case isLayout:
		return layoutDecorator{d, lt}
	case isCloser:
		return closerDecorator{d, c}
	}
	return d
}

type layoutDecorator struct {
	wrappingTarget
	lt LayoutTarget
}

func (d layoutDecorator) CinderLayout() Layout { return d.lt.CinderLayout() }

type closerDecorator struct {
	wrappingTarget
	c Closer
}

func (d closerDecorator) Close() error { return d.c.Close() }

type layoutCloserDecorator struct {
	wrappingTarget
	lt LayoutTarget
	c  Closer
}

func (d layoutCloserDecorator) CinderLayout() Layout { return d.lt.CinderLayout() }
func (d layoutCloserDecorator) Close() error         { return d.c.Close() }
