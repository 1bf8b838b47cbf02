// Package ui is the daemon's web UI: server-rendered pages (html/template)
// over the same Go functions the control API serves, made live with htmx
// and its Server-Sent Events extension (vendored in static/ with their
// licences, embedded with go:embed: no Node build step).
//
// # Pages
//
//	/            shares: state, progress, members and how each is reached (live)
//	/share/ID    one share: needed files, a read-only member's local changes
//	             with revert buttons, its members with their access (from the
//	             signed membership log) and how each is reached, changes
//	             waiting for the owners' approval with approve buttons, its
//	             conflicts and versions
//	/conflicts   conflict copies beside their files, with resolve buttons
//	/versions    the versions folders, with restore buttons
//	/devices     this device, its peers and refused connections (live)
//	/pair        make an invitation: link, short code and QR code
//	/events      the event stream, live: status changes and each file
//	             applied, deleted or in conflict (Daemon.Subscribe)
//	/rates       transfer rates over the last hour (inline SVG)
//	/sse         the Server-Sent Events the live parts read
//
// # Protection
//
// The daemon serves the UI on loopback TCP only (daemon.Options.UI). Any
// local user can connect to a loopback port, so nothing is served without
// a session: `blueshift ui` asks the daemon over its control socket (mode
// 0600, so only the home's user) for a one-time login link (LoginURL); its
// token, spent at first visit, becomes an HttpOnly SameSite=Strict session
// cookie signed with the key in the home (KeyFile, mode 0600). Every
// request must name a loopback Host (a DNS name rebound to 127.0.0.1 is
// refused); a request that changes anything must be a POST from this UI's
// origin (Origin, else Referer) carrying the session's CSRF token.
//
// # Conflicts, versions and needed files
//
// The pages reach them through Files. When the daemon has a control API
// Handler with the conflicts, versions and needed endpoints, apiFiles
// calls them in process, so the UI and the command line run the same
// code. Without one, folderFiles does the work in the share folder through
// an os.Root (nothing reaches outside the share), keeping every file it
// replaces in the versions folder first (the watcher then records the
// change like any edit), and the share page shows needed counts only.
//
// Every other page reads daemon.Status, the function GET /v1/status
// serves; members, revert, approve and pairing call the control API in
// process (GET /v1/members, POST /v1/revert, POST /v1/members/approve,
// POST /v1/invites), the endpoints `blueshift member list`, `revert`,
// `member approve` and `invite` call.
//
// # Concurrency
//
// A Server is safe for concurrent use; its mu guards the login tokens and
// the rate history. Run (owned by the daemon) samples the rates.
package ui
