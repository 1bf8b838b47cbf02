package daemon

// Subscribe is GET /v1/events in process, for the web UI: every event
// published from now on (file_applied, file_deleted, conflict,
// share_in_sync, member_joined; status events are the reader's to derive
// from Status), until cancel. As for the stream, a reader that falls
// behind subscriberQueue events loses the rest, and never holds sync up.
func (d *Daemon) Subscribe() (events <-chan Event, cancel func()) {
	sub, unsubscribe := d.events.subscribe()
	return sub.ch, unsubscribe
}
