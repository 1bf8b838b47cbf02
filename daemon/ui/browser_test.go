package ui_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	_ "image/png"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/blueshift-sync/blueshift/daemon"
)

// chromiumPath is Debian's chromium, which CI installs (.ci/run).
const chromiumPath = "/usr/bin/chromium"

// browser starts a headless Chromium with a fresh profile and returns a
// context to drive it; the test's cleanup closes it.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath
	if _, err := os.Stat(path); err != nil {
		if p, err := exec.LookPath("chromium"); err == nil {
			path = p
		} else {
			t.Skipf("browser tests need Chromium (%s): apt-get install -y chromium", chromiumPath)
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	if err := chromedp.Do(bctx); err != nil {
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("start Chromium: %v", err)
	}
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	return bctx
}

// run runs browser steps with the test's deadline.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// value runs one browser action that returns a value.
func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// screenshot saves the page as NAME.png in $BLUESHIFT_SCREENSHOTS, else
// testdata/screenshots (git-ignored).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("BLUESHIFT_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("testdata", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	png := value(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// login opens dev's UI through a fresh one-time link.
func login(t *testing.T, ctx context.Context, dev *device) {
	t.Helper()
	u, err := dev.ui.LoginURL(dev.base)
	if err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "login", chromedp.Navigate(u), chromedp.WaitVisible(chromedp.CSS(`nav`)))
}

// decodeQR reads the QR code in a PNG.
func decodeQR(t *testing.T, png []byte) string {
	t.Helper()
	img, _, err := image.Decode(bytes.NewReader(png))
	if err != nil {
		t.Fatalf("decode the QR code's image: %v", err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		t.Fatalf("read the QR code: %v", err)
	}
	return res.GetText()
}

// TestBrowser drives the UI of two daemons in Chromium: pair them with an
// invitation whose QR code is read back, watch the joiner reach in-sync,
// resolve a conflict with a click, restore a version, and watch the
// events, devices and rates pages; a screenshot of each page is saved.
func TestBrowser(t *testing.T) {
	ctx := browser(t)
	alpha := startDevice(t, "alpha")
	beta := startDevice(t, "beta")
	files := map[string]string{"notes.txt": "alpha's notes\n", "docs/plan.md": "# plan\n"}
	for i := range 20 {
		files[fmt.Sprintf("data/f%02d.bin", i)] = strings.Repeat(fmt.Sprint(i), 50_000)
	}
	dirA := alpha.addShare("docs", files)
	waitFor(t, "alpha's share in sync", func() bool { s, ok := alpha.share("docs"); return ok && s.InSync })

	// Pairing: an invitation, its QR code read back from the screen.
	login(t, ctx, alpha)
	run(t, ctx, "make an invitation",
		chromedp.Navigate(alpha.base+"/pair"),
		chromedp.Click(chromedp.CSS(`#invite`)),
		chromedp.WaitVisible(chromedp.CSS(`#qr`)),
	)
	link := value(t, ctx, "the link", chromedp.Value(chromedp.CSS(`#link`)))
	qrPNG := value(t, ctx, "the QR code", chromedp.Screenshot(chromedp.CSS(`#qr`)))
	screenshot(t, ctx, "pair")
	if got := decodeQR(t, qrPNG); got != link {
		t.Fatalf("the QR code reads %q, the page's link is %q", got, link)
	}
	if _, err := daemon.ParseLink(link); err != nil {
		t.Fatalf("the invitation link does not parse: %v", err)
	}
	if code := value(t, ctx, "the short code", chromedp.Text(chromedp.CSS(`#code`))); !daemon.IsCode(strings.TrimSpace(code)) {
		t.Fatalf("the pairing page's short code %q is not a code like XXXXX-XXXXX", code)
	}

	// Beta joins through the link read from the QR code; its UI, open
	// before the files arrive, shows the share reach in-sync live.
	dirB := filepath.Join(filepath.Dir(beta.home), "docs-beta")
	if _, err := daemon.Join(beta.home, link, dirB, time.Time{}); err != nil {
		t.Fatal(err)
	}
	login(t, ctx, beta)
	beta.reload()
	run(t, ctx, "beta's share shown", chromedp.WaitVisible(chromedp.CSS(`section[data-share="docs"]`)))
	run(t, ctx, "beta's share in sync, live", chromedp.WaitVisible(chromedp.CSS(`section[data-share="docs"][data-state="in-sync"]`)))
	for p, c := range files {
		if got := readFile(t, filepath.Join(dirB, p)); got != c {
			t.Fatalf("beta's %s: %.40q, want %.40q", p, got, c)
		}
	}
	members := value(t, ctx, "beta's members", chromedp.Text(chromedp.CSS(`section[data-share="docs"] table.members`)))
	if !strings.Contains(members, "alpha") || !strings.Contains(members, "connected via 127.0.0.1:") {
		t.Fatalf("beta's share page does not show alpha connected: %q", members)
	}
	screenshot(t, ctx, "shares")

	// A conflict copy beside notes.txt (as the engine makes them), then
	// "keep the copy" clicked: the file changes on disk, and on beta.
	copyName := "notes.sync-conflict-20261203-101500-BETA123.txt"
	writeFile(t, filepath.Join(dirA, copyName), "beta's notes\n")
	login(t, ctx, alpha)
	run(t, ctx, "conflicts page",
		chromedp.Navigate(alpha.base+"/conflicts"),
		chromedp.WaitVisible(chromedp.CSS(`.conflict[data-path="notes.txt"]`)))
	sides := value(t, ctx, "the two sides", chromedp.Text(chromedp.CSS(`.conflict[data-path="notes.txt"]`)))
	if !strings.Contains(sides, "alpha's notes") || !strings.Contains(sides, "beta's notes") {
		t.Fatalf("the conflict does not show both sides: %q", sides)
	}
	screenshot(t, ctx, "conflicts")
	run(t, ctx, "keep the copy",
		chromedp.Click(chromedp.CSS(`.conflict[data-path="notes.txt"] button.keep-copy`)),
		chromedp.WaitVisible(chromedp.CSS(`#done`)))
	if got := readFile(t, filepath.Join(dirA, "notes.txt")); got != "beta's notes\n" {
		t.Fatalf("after keeping the copy, notes.txt holds %q", got)
	}
	if _, err := os.Stat(filepath.Join(dirA, copyName)); !os.IsNotExist(err) {
		t.Fatalf("the conflict copy is still there: %v", err)
	}
	waitFor(t, "the resolution to reach beta", func() bool { return readFile(t, filepath.Join(dirB, "notes.txt")) == "beta's notes\n" })

	// The replaced notes.txt is a version: restore it with a click.
	run(t, ctx, "versions page",
		chromedp.Navigate(alpha.base+"/versions"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-path="notes.txt"] button.restore`)))
	screenshot(t, ctx, "versions")
	run(t, ctx, "restore",
		chromedp.Click(chromedp.CSS(`tr[data-path="notes.txt"] button.restore`)),
		chromedp.WaitVisible(chromedp.CSS(`#done`)))
	if got := readFile(t, filepath.Join(dirA, "notes.txt")); got != "alpha's notes\n" {
		t.Fatalf("after the restore, notes.txt holds %q", got)
	}
	waitFor(t, "the restore to reach beta", func() bool { return readFile(t, filepath.Join(dirB, "notes.txt")) == "alpha's notes\n" })

	// One share's page, the devices page (beta connected), the event
	// stream and the rate plot.
	s, _ := alpha.share("docs")
	run(t, ctx, "share page", chromedp.Navigate(alpha.base+"/share/"+s.ID), chromedp.WaitVisible(chromedp.CSS(`#needed`)))
	screenshot(t, ctx, "share")
	run(t, ctx, "devices page", chromedp.Navigate(alpha.base+"/devices"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-device="beta"][data-connected="true"]`)))
	screenshot(t, ctx, "devices")
	run(t, ctx, "events page", chromedp.Navigate(alpha.base+"/events"), chromedp.WaitVisible(chromedp.CSS(`#events li`)))
	events := value(t, ctx, "the events", chromedp.Text(chromedp.CSS(`#events`)))
	if !strings.Contains(events, "share docs: in sync") || !strings.Contains(events, "device beta connected") {
		t.Fatalf("the event stream shows %q", events)
	}
	screenshot(t, ctx, "events")
	run(t, ctx, "rates page", chromedp.Navigate(alpha.base+"/rates"), chromedp.WaitVisible(chromedp.CSS(`#rate-plot polyline.rate-out`)))
	points := value(t, ctx, "the plot", chromedp.AttributeValue(chromedp.CSS(`#rate-plot polyline.rate-out`), "points")).Value
	if strings.Count(points, ",") < 2 {
		t.Fatalf("the rate plot has %q", points)
	}
	screenshot(t, ctx, "rates")
}

// TestBrowserCrossOrigin: a page of another origin on this machine makes
// the browser post to the UI (with its session cookie, as the sites are
// the same): refused, nothing changed.
func TestBrowserCrossOrigin(t *testing.T) {
	ctx := browser(t)
	alpha := startDevice(t, "alpha")
	dir := alpha.addShare("docs", map[string]string{"notes.txt": "mine\n"})
	copyName := "notes.sync-conflict-20261203-101500-EVIL123.txt"
	writeFile(t, filepath.Join(dir, copyName), "the attacker's\n")
	s, _ := alpha.share("docs")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	evil := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s/conflicts/resolve">
<input name="share" value="%s"><input name="copy" value="%s"><input name="keep" value="copy"></form>
<script>document.getElementById("f").submit()</script>`, alpha.base, s.ID, copyName)
	})}
	served := make(chan struct{})
	go func() { defer close(served); evil.Serve(ln) }()
	defer func() { evil.Close(); <-served }()

	login(t, ctx, alpha)
	run(t, ctx, "the other origin's form", chromedp.Navigate("http://"+ln.Addr().String()+"/"))
	value(t, ctx, "the form posted", chromedp.Poll[bool](`location.href.startsWith("`+alpha.base+`")`))
	body := value(t, ctx, "the answer", chromedp.Text(chromedp.CSS(`body`)))
	if !strings.Contains(body, "refused") {
		t.Fatalf("the UI answered the other origin's form with %q", body)
	}
	if got := readFile(t, filepath.Join(dir, "notes.txt")); got != "mine\n" {
		t.Fatalf("notes.txt changed to %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, copyName)); err != nil {
		t.Fatalf("the conflict copy is gone: %v", err)
	}
}
