// Waiting on a signal in a test: poll a probe until it holds, never a fixed sleep.

/**
 * Polls `probe` until it gives a value other than undefined or false, and returns it; after `timeoutMs` fails naming
 * `what` (a function when the name says what is still missing).
 */
export async function until<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  what: string | (() => string) = 'the condition',
  timeoutMs = 30_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${typeof what === 'function' ? what() : what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
