// Package screen is the kiosk's screen logic without any UI toolkit: which
// screen is shown, the rotating notices, the urgent takeover, the feedback
// form and its validation, the idle timeout and the QR code contents.
//
// A Model is safe for concurrent use. It runs no timers or goroutines: the
// caller passes the current time to every method and calls Tick regularly
// (about once a second). The UI renders a View snapshot and calls the action
// methods on taps.
//
// # Urgent takeover
//
// An active urgent notice replaces the home screen (View.Screen is Urgent)
// until it ends (ValidUntil passes) or is withdrawn (a content update no
// longer holds it); then the home screen returns by itself. An urgent notice
// never interrupts a resident who is in the middle of something: on the
// feedback steps, the receipt or a notice detail the screen stays as it is,
// and the takeover appears as soon as the resident finishes, cancels or the
// idle timeout returns the kiosk to home (at most IdleTimeout later). The
// urgent screen itself keeps the "give feedback" button, so residents can still
// report a problem while it is shown.
//
// # Setup
//
// While the agent reports (SetStatus) that the device is not enrolled, the
// Setup screen replaces every other screen, the urgent takeover included,
// and residents cannot start feedback: the device cannot store it yet. A
// technician types the 12-digit claim code on the keypad and Enrol sends it
// through an Enroller; the agent's status in the reply (or a later status
// event) returns the kiosk to home. Before the first status the kiosk shows
// its usual screens.
//
// # Attract loop
//
// After AttractAfter without a touch on the home screen (never during the
// urgent takeover or setup), the Attract screen plays the first active
// playlist of the content that has a playable item: image and video items
// whose file the agent holds, notice items whose notice is active. Images
// and notices show for their duration (Tick moves on); a video plays until
// the UI calls VideoEnded. View.Current is on screen and View.Next is
// chosen ahead, so the UI prepares it (starts decoding) and the screen is
// never empty between items. A file that fails (ItemFailed) is skipped and
// remembered; with nothing playable the kiosk stays on, or returns to,
// Home. A touch (LeaveAttract) returns to Home at once. New content never
// cuts the item on screen: the next item is chosen again and a playlist
// switch takes effect at the next item boundary. Every item started and
// every notice shown on the home rotation is reported to the OnPlay hook.
//
// # Remote screenshots
//
// Capturable says whether a technician's remote screenshot may be taken
// now: only on screens that show nothing of a resident's (home, a notice,
// the urgent takeover, the attract loop). The UI asks it on the UI
// goroutine, together with the capture, so a tap cannot come between.
//
// # Idle timeout
//
// With no action for IdleTimeout on any screen but home, the model returns to
// home, wipes the form and the receipt and switches back to the default
// language, so the next resident finds the kiosk as new; on Setup it wipes a
// half-typed claim code and its message. A submission or enrolment in
// flight is never cut off by the idle timeout.
package screen
