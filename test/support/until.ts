// Waiting on a signal in a test: poll a probe until it holds, never a fixed sleep.

// The real timer, taken before any test fakes it: a test on fake timers (vi.useFakeTimers) still waits on a signal.
const realSetTimeout = globalThis.setTimeout;

/**
 * Polls `probe` until it gives a value other than undefined, null or false, and returns it; after `timeoutMs` fails
 * naming `what` (a function when the name says what is still missing). null is "not yet" too: a DOM query, a regular
 * expression's match or an attribute read gives null before the thing waited for is there (a probe that took it for
 * an answer read a dialog's focus before the close event had moved it).
 */
export async function until<T>(
  probe: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  what: string | (() => string) = 'the condition',
  timeoutMs = 30_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${typeof what === 'function' ? what() : what}`);
    await new Promise((r) => realSetTimeout(r, 5));
  }
}
