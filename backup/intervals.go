package backup

import "sort"

// span is a half-open byte range [Start, End).
type span struct{ Start, End int64 }

// spanSet is a set of disjoint, sorted, non-adjacent spans.
type spanSet struct{ spans []span }

// missing returns the parts of s not in the set, in order.
func (ss *spanSet) missing(s span) []span {
	var out []span
	i := sort.Search(len(ss.spans), func(i int) bool { return ss.spans[i].End > s.Start })
	cur := s.Start
	for ; i < len(ss.spans) && ss.spans[i].Start < s.End; i++ {
		if ss.spans[i].Start > cur {
			out = append(out, span{cur, ss.spans[i].Start})
		}
		cur = max(cur, ss.spans[i].End)
	}
	if cur < s.End {
		out = append(out, span{cur, s.End})
	}
	return out
}

// add puts s into the set, merging what it touches.
func (ss *spanSet) add(s span) {
	if s.Start >= s.End {
		return
	}
	i := sort.Search(len(ss.spans), func(i int) bool { return ss.spans[i].End >= s.Start })
	j := i
	for j < len(ss.spans) && ss.spans[j].Start <= s.End {
		s.Start = min(s.Start, ss.spans[j].Start)
		s.End = max(s.End, ss.spans[j].End)
		j++
	}
	ss.spans = append(ss.spans[:i], append([]span{s}, ss.spans[j:]...)...)
}
