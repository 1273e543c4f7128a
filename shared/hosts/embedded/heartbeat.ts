// A dead man's switch (docs/safety.md H15): `crs serve --heartbeat-url URL` asks that URL (GET, nothing else sent)
// every interval, only while the server is healthy (no delivery alert: the pager ticking, grading not behind, no lane
// stuck; what /api/health reports). An external push monitor (healthchecks.io, Uptime Kuma's push monitor, Cronitor)
// pages the operator when the beats stop: the server dead, hung or unhealthy, which it cannot say itself.
// A beat that fails is said once (and once when one gets through again), never per minute; it is timed out, never
// overlaps the next, and touches nothing of grading or paging.

export interface HeartbeatOptions {
  url: string;
  everyMs: number;
  /** How long a beat may take (half the interval, at most 10 s). */
  timeoutMs?: number;
  /** Why the server is not healthy now (the delivery watch's alerts, looked at afresh); [] when it is. */
  unhealthy: () => string[];
  log: (line: string) => void;
}

export class Heartbeat {
  /** Beats asked, held back (unhealthy) and failed (refused, timed out, not 2xx): for tests and the log. */
  readonly stats = { sent: 0, held: 0, failed: 0 };
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private readonly stopping = new AbortController();
  private holding = false;
  private failing = false;
  private readonly timeoutMs: number;
  /** The monitor's address without its path: a push URL's path is its secret. */
  private readonly origin: string;

  constructor(private readonly o: HeartbeatOptions) {
    this.timeoutMs = o.timeoutMs ?? Math.min(10_000, o.everyMs / 2);
    this.origin = new URL(o.url).origin;
  }

  /** Beats at once (the monitor hears of a restart), then every `everyMs`. */
  start(): void {
    this.beat();
    this.timer = setInterval(() => this.beat(), this.o.everyMs);
    this.timer.unref();
  }

  /** Stops beating; the beat in flight, if any, is let go. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.stopping.abort();
    await this.inFlight;
  }

  private beat(): void {
    if (this.inFlight) return; // the last one is still running (it times out before the next interval)
    let why: string[];
    try {
      why = this.o.unhealthy();
    } catch (err) {
      why = [`its health cannot be read (${(err as Error).name})`];
    }
    if (why.length > 0) {
      this.stats.held++;
      if (!this.holding)
        this.o.log(
          `heartbeat: held back while the server is unhealthy (${why.join('; ')}): the monitor at ${this.origin} will page when it misses it`,
        );
      this.holding = true;
      return;
    }
    if (this.holding) this.o.log('heartbeat: the server is healthy again; beating again');
    this.holding = false;
    this.stats.sent++;
    this.inFlight = this.send().finally(() => {
      this.inFlight = undefined;
    });
  }

  private async send(): Promise<void> {
    let problem: string | undefined;
    try {
      const res = await fetch(this.o.url, {
        signal: AbortSignal.any([AbortSignal.timeout(this.timeoutMs), this.stopping.signal]),
      });
      await res.body?.cancel();
      if (!res.ok) problem = `answered HTTP ${res.status}`;
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      problem =
        e.name === 'TimeoutError'
          ? `did not answer within ${this.timeoutMs} ms`
          : `could not be reached (${e.cause?.code ?? e.name})`;
    }
    if (this.stopping.signal.aborted) return;
    if (problem !== undefined) {
      this.stats.failed++;
      if (!this.failing)
        this.o.log(
          `heartbeat: the monitor at ${this.origin} ${problem}; it will page when it misses beats (said once, until one gets through)`,
        );
      this.failing = true;
    } else if (this.failing) {
      this.o.log(`heartbeat: the monitor at ${this.origin} answers again`);
      this.failing = false;
    }
  }
}
