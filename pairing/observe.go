package pairing

// Observer is told what the background work did and what was sent to the
// platforms, so that the process can count it (the api package turns the
// calls into Prometheus counters).
// Calls come from many goroutines; they must be cheap and never block.
// Every argument is a word from code or a configured channel name, never
// request data, so a counter's label values stay few.
type Observer interface {
	// JobFinished: a job of queue (QueueInbound, QueueNotify,
	// QueueSiteEvents) ended one try with result (Job*).
	JobFinished(queue, result string)
	// PlatformSend: a message of kind (SendNotification, SendPIN,
	// SendReply) to a platform through channel ended with result (Send*).
	// The channel adapters call it, once for every message they send to
	// their platform, in the one helper each has for sending: so a send
	// the service asks for (Channel.SendPIN, Channel.Deliver) and a chat
	// answer the adapter sends on its own are counted alike, and nothing
	// twice. The service does not call it.
	PlatformSend(channel, kind, result string)
}

// The queues, named as in QueueStats and the queue gauges.
const (
	QueueInbound    = "inbound"
	QueueNotify     = "notify"
	QueueSiteEvents = "site_events"
)

// Job results: one try of a job.
const (
	JobDone     = "done"     // handled, delivered
	JobRetried  = "retried"  // failed, scheduled again
	JobFailed   = "failed"   // given up (permanent failure, too old, too many tries)
	JobReleased = "released" // handed back unstarted or cut by a shutdown
)

// Kinds and results of a send to a platform.
const (
	SendNotification = "notification" // a notification of the outbox
	SendPIN          = "pin"          // the pairing message: a /login answer or a resend the site asked for
	SendReply        = "reply"        // any other answer to a person in the chat (status, menus, confirmations, errors)

	SendDelivered   = "delivered"
	SendFailed      = "failed"       // refused for good
	SendRetried     = "retried"      // a temporary failure
	SendRateLimited = "rate_limited" // the platform asked us to wait
	SendBlocked     = "blocked"      // the person blocked the bot
)

// SendResult names the outcome of one platform send from its error: nil,
// or an error wrapping a *DeliveryError (the adapters map their
// platform's failures to one, as for Deliver); any other error is a
// temporary failure (retried).
func SendResult(err error) string {
	if err == nil {
		return SendDelivered
	}
	de := deliveryErrorOf(err)
	switch {
	case de.Blocked:
		return SendBlocked
	case de.RetryAfter > 0:
		return SendRateLimited
	case de.Permanent:
		return SendFailed
	}
	return SendRetried
}

// NopObserver counts nothing.
type NopObserver struct{}

func (NopObserver) JobFinished(string, string)          {}
func (NopObserver) PlatformSend(string, string, string) {}

// WithObserver has the service (and its notification workers) report to o.
func WithObserver(o Observer) Option { return func(s *Service) { s.obs = o } }

// jobResult names a recorded delivery result.
func jobResult(res DeliveryResult) string {
	switch {
	case res.Status == DeliveryDelivered:
		return JobDone
	case res.Status.Final():
		return JobFailed
	case res.Uncount:
		return JobReleased
	}
	return JobRetried
}
