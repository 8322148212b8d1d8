// What the stack does with SIGINT/SIGTERM/SIGHUP. One Ctrl-C on `npm start` reaches the stack twice:
// the terminal sends SIGINT to the whole foreground process group (npm, sh, the stack), and npm
// forwards the SIGINT it got to its child (@npmcli/run-script's signal-manager). So the signals of
// the first `repeatWindowMs` after the first one are that same Ctrl-C and change nothing: the
// orderly stop goes on, and no call is cut. Once the window has passed (announced by `armed`, while
// the stop still runs), another signal is a deliberate second Ctrl-C: `force`.

export interface StopSignalActions {
  /** The first signal: stop in order (the sidecar drains first). */
  stop(): void;
  /** The window is over and the stop still runs: a signal now forces. */
  armed(): void;
  /** A signal after the window: kill everything now. */
  force(): void;
}

export const REPEAT_WINDOW_MS = 1000;

export function stopSignalHandler(actions: StopSignalActions, repeatWindowMs = REPEAT_WINDOW_MS): () => void {
  let state: "running" | "stopping" | "armed" | "forced" = "running";
  return () => {
    if (state === "running") {
      state = "stopping";
      // Unref'd: the stack exits when its stop is done, not when this timer is.
      setTimeout(() => {
        if (state !== "stopping") return;
        state = "armed";
        actions.armed();
      }, repeatWindowMs).unref();
      actions.stop();
    } else if (state === "armed") {
      state = "forced";
      actions.force();
    }
  };
}
