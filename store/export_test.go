package store

// BatchStats reports how many transactions the SQLite writer ran and how
// many COMMITs it made (group commit makes the second smaller).
func BatchStats(s *Store) (ran, commits int64) {
	if s.batch == nil {
		return 0, 0
	}
	return s.batch.ran.Load(), s.batch.commits.Load()
}
