-- Indexes for the prune loop: spent grants and old notifications are
-- deleted by time.
CREATE INDEX grants_expires ON grants (expires_at);
CREATE INDEX outbox_messages_created ON outbox_messages (created_at);
