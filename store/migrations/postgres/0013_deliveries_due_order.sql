-- A claim walks the due deliveries in the order it takes them
-- (next_attempt_at, then id) and stops at its limit. With the id in the
-- index the walk needs no sort: before, PostgreSQL sorted every delivery
-- that shared a next_attempt_at (a message to many chats, a backlog
-- retried together), which made a claim cost the size of the backlog.
DROP INDEX outbox_deliveries_due;
CREATE INDEX outbox_deliveries_due ON outbox_deliveries (status, next_attempt_at, id);
