package config

import "strings"

// nearest is the candidate a mistyped dotted key most likely meant: the
// one within a small edit distance (a typo: source.hots → source.host),
// else one with the same last name in another section (a key put in the
// wrong section: source.brokers → kafka.brokers); "" when none is close.
func nearest(key string, candidates []string) string {
	best, bestDist := "", -1
	for _, c := range candidates {
		if d := distance(key, c); bestDist < 0 || d < bestDist || d == bestDist && c < best {
			best, bestDist = c, d
		}
	}
	name := key[strings.LastIndexByte(key, '.')+1:]
	if best != "" && bestDist <= max(1, min(3, len(name)/3)) {
		return best
	}
	best = ""
	for _, c := range candidates {
		if c[strings.LastIndexByte(c, '.')+1:] == name && (best == "" || len(c) < len(best) || len(c) == len(best) && c < best) {
			best = c
		}
	}
	return best
}

// distance is the Damerau–Levenshtein distance between a and b (optimal
// string alignment: an adjacent transposition, hots → host, costs one).
func distance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
